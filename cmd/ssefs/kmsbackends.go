package main

import (
	"context"

	"github.com/ssefs/ssefs/keys"
)

// openKES and openVault connect to KES and Vault through package keys. They are variables
// so that tests can put an in-memory KMS behind the whole configuration path.
var (
	openKES = func(o kesOptions) (keys.KMS, func() error, error) {
		k, err := keys.NewKES(keys.KESConfig{
			Endpoints: o.Endpoints, KeyFile: o.KeyFile, CertFile: o.CertFile,
			CAPath: o.CAPath, Enclave: o.Enclave, Timeout: o.Timeout,
		})
		if err != nil {
			return nil, nil, err
		}
		return k, k.Close, nil
	}
	openVault = func(ctx context.Context, o vaultOptions) (keys.KMS, func() error, error) {
		v, err := keys.NewVault(ctx, keys.VaultConfig{
			Endpoint: o.Endpoint, AppRoleMount: o.AppRoleMount, RoleID: o.RoleID, SecretID: o.SecretID,
			TransitMount: o.TransitMount, Namespace: o.Namespace, CAPath: o.CAPath, Timeout: o.Timeout,
		})
		if err != nil {
			return nil, nil, err
		}
		return v, v.Close, nil
	}
)
