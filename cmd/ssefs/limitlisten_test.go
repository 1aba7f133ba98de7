package main

import (
	"errors"
	"net"
	"testing"
	"time"
)

// accepted runs Accept in the background and reports each connection (or error).
func acceptLoop(l net.Listener) (<-chan net.Conn, <-chan error) {
	conns, errs := make(chan net.Conn, 16), make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				errs <- err
				return
			}
			conns <- c
		}
	}()
	return conns, errs
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, 2)
	conns, errs := acceptLoop(l)
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	take := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-conns:
			return c
		case err := <-errs:
			t.Fatalf("%s: Accept failed: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not accepted within 10s", what)
		}
		return nil
	}
	dial()
	dial()
	first := take("connection 1")
	take("connection 2")
	dial() // the third waits in the backlog
	select {
	case <-conns:
		t.Fatal("a third connection was accepted while two were open (limit 2)")
	case <-time.After(300 * time.Millisecond): // a bound on a thing that must not happen
	}
	first.Close()
	first.Close() // a second Close must not free a second slot
	take("connection 3, after one closed")
	dial()
	select {
	case <-conns:
		t.Fatal("a fourth connection was accepted: a double Close freed two slots")
	case <-time.After(300 * time.Millisecond):
	}

	// Close wakes the Accept that waits for a slot.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waits for a slot after Close")
	}
	if err := l.Close(); err == nil {
		t.Log("note: a second Close reported no error")
	}
}

func TestLimitConnCloseWrite(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, 1)
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			c.Read(buf) // returns at the server's half-close
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("a limited connection hides CloseWrite: http.Server could not half-close it")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
}
