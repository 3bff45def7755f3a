package gatewayworker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// RegisterClientConfig configures a [RegisterClient].
type RegisterClientConfig struct {
	// RegisterAddress is the Register's host:port. Required.
	RegisterAddress string
	// Address is the inner address announced (lan_ip:port): the address
	// BusinessWorkers and GatewayClient connect to, and the one client
	// ids carry. Required.
	Address string
	// SecretKey is sent with gateway_connect; "" means none.
	SecretKey string
	// RetryDelay is how long to wait before reconnecting after the
	// connection ended or could not be made. Zero means
	// DefaultRetryDelay (1 s, as PHP).
	RetryDelay time.Duration
	// PingInterval is how often {"event":"ping"} is sent. Zero means as
	// PHP: DefaultPingInterval (25 s) unless RegisterAddress starts with
	// "127.0.0.1", then none. Negative means never.
	PingInterval time.Duration
	// DialTimeout bounds each connection attempt. Zero means 10 s.
	DialTimeout time.Duration
	// Logger receives connection failures at Info (once per outage) and
	// connects at Debug. Nil discards them.
	Logger *slog.Logger
}

// RegisterClient keeps a Gateway registered with a Register (a PHP one,
// in a mixed fleet): it connects, sends gateway_connect, pings, and
// reconnects on its own whenever the connection ends.
type RegisterClient struct {
	cfg RegisterClientConfig
	log *slog.Logger
}

// NewRegisterClient returns a client with cfg's zero fields set to their
// defaults, or the problems of cfg (see [RegisterClientConfig.Validate]).
func NewRegisterClient(cfg RegisterClientConfig) (*RegisterClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.PingInterval == 0 && !strings.HasPrefix(cfg.RegisterAddress, "127.0.0.1") {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "gatewayworker-register-client", "register", cfg.RegisterAddress)
	return &RegisterClient{cfg: cfg, log: log}, nil
}

// Validate returns every problem of c, joined.
func (c RegisterClientConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.RegisterAddress); err != nil {
		errs = append(errs, fmt.Errorf("gatewayworker: register address %q: %w", c.RegisterAddress, err))
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("gatewayworker: announced address %q: %w", c.Address, err))
	}
	return errors.Join(errs...)
}

// Run keeps the registration up until ctx is done, then closes the
// connection (the Register then drops the address) and returns nil.
func (c *RegisterClient) Run(ctx context.Context) error {
	failing := false // a Register that cannot be reached is logged once
	for {
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case up:
			c.log.Info("register connection closed, reconnecting", "err", err, "retry", c.cfg.RetryDelay)
			failing = false
		case !failing:
			c.log.Info("cannot reach the register, retrying", "err", err, "retry", c.cfg.RetryDelay)
			failing = true
		}
		t := time.NewTimer(c.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session runs one connection until it ends. up reports whether
// gateway_connect went out.
func (c *RegisterClient) session(ctx context.Context) (up bool, err error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.RegisterAddress)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := nc.Write(AppendGatewayConnect(nil, c.cfg.Address, c.cfg.SecretKey)); err != nil {
		return false, err
	}
	c.log.Debug("registered", "address", c.cfg.Address)

	// The Register sends a Gateway nothing; reading tells when it closes.
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, nc)
		ended <- err
	}()
	var tick <-chan time.Time
	if c.cfg.PingInterval > 0 {
		t := time.NewTicker(c.cfg.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-ended:
			return true, err
		case <-tick:
			nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := nc.Write(AppendPing(nil)); err != nil {
				nc.Close()
				<-ended
				return true, err
			}
		case <-ctx.Done():
			nc.Close()
			<-ended
			return true, nil
		}
	}
}

// FetchAddresses asks a Register for the gateway addresses, as
// GatewayClient does: worker_connect, one broadcast_addresses line, then
// it closes. ctx bounds the whole exchange.
func FetchAddresses(ctx context.Context, registerAddress, secretKey string) ([]string, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", registerAddress)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if _, err := nc.Write(AppendWorkerConnect(nil, secretKey)); err != nil {
		return nil, err
	}
	line, err := readLine(bufio.NewReader(nc), MaxPacketSize, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("gatewayworker: register closed the connection (wrong secret key?): %w", ErrSecretKey)
		}
		return nil, err
	}
	m, err := ParseRegisterLine(line)
	if err != nil {
		return nil, err
	}
	if m.Event != EventBroadcastAddresses {
		return nil, fmt.Errorf("%w: got event %q, want %s", ErrBadRegisterLine, m.Event, EventBroadcastAddresses)
	}
	if m.Addresses == nil {
		m.Addresses = []string{}
	}
	return m.Addresses, nil
}
