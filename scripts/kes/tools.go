//go:build tools

// Package tools pins the KES server command, so that `go mod tidy` keeps it in go.mod.
// Build it with: cd scripts/kes && go build -o DIR/kes github.com/minio/kes/cmd/kes
package tools

import _ "github.com/minio/kes/cmd/kes"
