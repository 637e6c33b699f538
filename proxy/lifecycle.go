package proxy

import (
	"context"
	"errors"
	"net"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) addClient(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// addStream tracks a stream of a multiplexed connection as a client: the
// drain waits for it and cuts by user reach it. Its connection is tracked
// already, so a stream is tracked even while the server is closing.
func (s *Server) addStream(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c] = struct{}{}
	s.wg.Add(1)
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c)
	if s.closing && len(s.clients) == 0 {
		s.closeIdle()
	}
	s.wg.Done()
}

// closeIdle closes s.idle once; s.mu is held.
func (s *Server) closeIdle() {
	select {
	case <-s.idle:
	default:
		close(s.idle)
	}
}

// Shutdown stops accepting, lets connections finish until ctx ends, then cuts
// the rest and waits for their goroutines and for the password checks running.
// It returns ctx's error when connections had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	if len(s.clients) == 0 {
		s.closeIdle()
	}
	conns := make([]*tunnel.Conn, 0, len(s.clients))
	for c := range s.clients {
		conns = append(conns, c.conn)
	}
	s.mu.Unlock()
	// Keep-alive connections between two requests close now; the rest finish
	// what they are doing.
	for _, conn := range conns {
		conn.Drain()
	}
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
		s.cutAll(tunnel.ReasonShutdown)
	}
	s.wg.Wait()
	s.core.StopWorkers()
	s.gate.Close() // password checks that no session waits for any more
	return err
}

// cutAll cuts every live connection for reason.
func (s *Server) cutAll(reason string) {
	s.mu.Lock()
	conns := make([]*tunnel.Conn, 0, len(s.clients))
	for c := range s.clients {
		conns = append(conns, c.conn)
	}
	s.mu.Unlock()
	for _, conn := range conns {
		conn.Cut(reason)
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
