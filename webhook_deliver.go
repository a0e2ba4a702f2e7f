package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxResponseRead is how much of any response body the service reads from
// a webhook receiver or an upstream: enough for an error message, never a
// way to make the process buffer megabytes.
const maxResponseRead = 64 << 10

// deliveryResult is what one webhook attempt came to.
type deliveryResult struct {
	HTTPStatus int           // 0 when no response arrived
	Err        string        // empty on success; else in curl's wording
	Final      bool          // a failure that must not be retried
	Duration   time.Duration // how long the attempt took
}

// ok reports whether the receiver took the message.
func (r deliveryResult) ok() bool { return r.Err == "" }

// deliverer sends webhook messages over HTTP.
type deliverer struct {
	client    *http.Client
	timeout   time.Duration
	userAgent string
}

// newDeliverer builds the HTTP client for webhooks: no redirects, no proxy,
// and unless allowPrivate, a dialer that refuses private destinations at
// the moment of connecting, so DNS rebinding cannot get past it.
func newDeliverer(timeout time.Duration, allowPrivate bool, userAgent string) *deliverer {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook dial %q: %w", address, err)
			}
			if !addressAllowed(ap.Addr()) {
				return &addressNotAllowedError{ip: ap.Addr().Unmap()}
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &deliverer{
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:   timeout,
		userAgent: userAgent,
	}
}

// signature computes the Standard Webhooks signature header value: one
// "v1,<base64 HMAC-SHA256>" per secret, space separated.
func signature(secrets []string, msgID string, ts int64, body []byte) string {
	var sigs []string
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			continue
		}
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%d.", msgID, ts)
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// deliver POSTs one signed message and reports the outcome in curl's words.
func (d *deliverer) deliver(ctx context.Context, target, msgID string, secrets []string, body []byte) deliveryResult {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return deliveryResult{Err: "Malformed webhook URL: " + err.Error(), Final: true}
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.userAgent)
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if sig := signature(secrets, msgID, ts, body); sig != "" {
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		r := describeDeliveryError(err, req.URL, time.Since(start))
		r.Duration = time.Since(start)
		return r
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	r := deliveryResult{HTTPStatus: resp.StatusCode, Duration: time.Since(start)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.Err = fmt.Sprintf("HTTP %d from webhook", resp.StatusCode)
	}
	return r
}

// describeDeliveryError words a transport failure the way curl does.
func describeDeliveryError(err error, u *url.URL, elapsed time.Duration) deliveryResult {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	var notAllowed *addressNotAllowedError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &notAllowed):
		return deliveryResult{Err: notAllowed.Error(), Final: true}
	case errors.As(err, &dnsErr):
		return deliveryResult{Err: "Could not resolve host: " + host}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return deliveryResult{Err: fmt.Sprintf("Operation timed out after %d milliseconds", elapsed.Milliseconds())}
	case errors.Is(err, syscall.ECONNREFUSED):
		return deliveryResult{Err: fmt.Sprintf("Failed to connect to %s port %s: Connection refused", host, port)}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return deliveryResult{Err: fmt.Sprintf("Failed to connect to %s port %s: %s", host, port, syscallText(opErr.Err))}
	case errors.Is(err, syscall.ECONNRESET):
		return deliveryResult{Err: "Recv failure: Connection reset by peer"}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return deliveryResult{Err: "Empty reply from server"}
	default:
		return deliveryResult{Err: "Send failure: " + err.Error()}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// syscallText is the human text of the innermost system error, capitalised
// as curl prints it ("No route to host").
func syscallText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// checkWebhookURL validates a webhook URL at submit time: an absolute
// http(s) URL with a host, no credentials, at most 2048 characters, and,
// unless allowPrivate, not a literal address the policy refuses.
func checkWebhookURL(raw string, allowPrivate bool) error {
	if len(raw) > 2048 {
		return errors.New("webhook_url must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errors.New("webhook_url must be an absolute http or https URL with a host")
	}
	if u.User != nil {
		return errors.New("webhook_url must not carry a user name or password")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !allowPrivate && !addressAllowed(ip) {
		return fmt.Errorf("webhook_url address not allowed: %s", ip.Unmap())
	}
	return nil
}
