package main

import (
	"net"
	"sync"
)

// limitListener accepts at most n connections at once: Accept waits while n are open,
// so a connection past the limit stays in the kernel's backlog (the client sees a slow
// connect or a slow first answer, not a refusal) and is taken as soon as another closes.
// It bounds the goroutines, buffers and file descriptors a flood of clients can pin,
// which per-request limits cannot. (golang.org/x/net/netutil has the same; ssefs does
// not depend on x/net.)
type limitListener struct {
	net.Listener
	slots     chan struct{} // one token per open connection
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		// Closed while waiting for a slot: the error the listener gives once closed, so
		// http.Server sees the usual shutdown.
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and wakes an Accept that waits for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back on the first Close (http.Server may close twice).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite passes the half-close on: http.Server half-closes a connection whose request
// body it did not read, so that its error answer reaches the client before the reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
