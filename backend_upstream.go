package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// upstreamBackend restores each number by calling a provider's
// single-number restore endpoint.
type upstreamBackend struct {
	name        string // what messages call it: upstream, or upstream preview
	urlTemplate string // contains {number}
	user        string
	password    string
	timeout     time.Duration
	userAgent   string
	client      *http.Client
}

// newUpstreamBackend builds the backend with a client sized for many
// concurrent calls to one host.
func newUpstreamBackend(urlTemplate, user, password string, timeout time.Duration, userAgent string) *upstreamBackend {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
	}
	return &upstreamBackend{
		name: "upstream", urlTemplate: urlTemplate, user: user, password: password, timeout: timeout, userAgent: userAgent,
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// checkUpstreamURL validates the -upstream-url template.
func checkUpstreamURL(template string) error {
	return checkURLTemplate("upstream-url", template)
}

// checkURLTemplate validates the template of the flag named: an absolute
// http or https URL containing {number}.
func checkURLTemplate(flag, template string) error {
	if !strings.Contains(template, "{number}") {
		return fmt.Errorf("-%s must contain {number}, e.g. https://api.multitel.net/v3/restore/{number}", flag)
	}
	u, err := url.Parse(strings.ReplaceAll(template, "{number}", "15551230111"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-%s %q is not an absolute http or https URL", flag, template)
	}
	return nil
}

// transientStatus lists the HTTP statuses that are worth another attempt.
var transientStatus = map[int]bool{
	http.StatusRequestTimeout:     true,
	http.StatusTooManyRequests:    true,
	http.StatusBadGateway:         true,
	http.StatusServiceUnavailable: true,
	http.StatusGatewayTimeout:     true,
}

// upstreamBody is what the upstream's JSON answer may carry.
type upstreamBody struct {
	Message                string   `json:"message"`
	Error                  string   `json:"error"`
	RequiresIdentityUpdate flexBool `json:"requires_identity_update"`
	NeedsRegistration      flexBool `json:"needs_registration"`
}

// flexBool accepts 0/1, true/false and "0"/"1" (and "true"/"false").
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(strings.ToLower(string(data)), `"`) {
	case "1", "true":
		*b = true
	case "0", "false", "", "null":
		*b = false
	default:
		return fmt.Errorf("not a flag: %s", data)
	}
	return nil
}

// Restore implements Restorer with one HTTP call.
func (b *upstreamBackend) Restore(ctx context.Context, _ int64, number string) Outcome {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	target := strings.ReplaceAll(b.urlTemplate, "{number}", url.PathEscape(number))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return internalFailure()
	}
	if b.user != "" || b.password != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", b.userAgent)
	resp, err := b.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return Outcome{StatusCode: http.StatusGatewayTimeout, Transient: true,
				Message: fmt.Sprintf("Error: '%s did not answer within %s'", b.name, b.timeout)}
		}
		return Outcome{StatusCode: http.StatusBadGateway, Transient: true,
			Message: "Error: '" + b.name + " unreachable'"}
	}
	defer resp.Body.Close()
	// Read one byte past the cap to tell a large body from one that fits.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return Outcome{StatusCode: http.StatusGatewayTimeout, Transient: true,
				Message: fmt.Sprintf("Error: '%s did not finish its answer within %s'", b.name, b.timeout)}
		}
		return Outcome{StatusCode: http.StatusBadGateway, Transient: true, Message: "Error: '" + b.name + " answer cut short'"}
	}
	parsed, parseErr := parseUpstreamBody(body)
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if parseErr != nil {
			return Outcome{StatusCode: http.StatusBadGateway,
				Message: fmt.Sprintf("Error: '%s answered %d with an unreadable body'", b.name, resp.StatusCode)}
		}
		msg := parsed.Message
		if msg == "" {
			msg = msgRestored
		}
		return Outcome{Success: true, StatusCode: resp.StatusCode, Message: msg,
			RequiresIdentityUpdate: bool(parsed.RequiresIdentityUpdate), NeedsRegistration: bool(parsed.NeedsRegistration)}
	}
	msg := parsed.Message
	if msg == "" {
		msg = parsed.Error
	}
	if msg == "" {
		msg = describeStatus(resp.StatusCode)
	}
	return Outcome{StatusCode: resp.StatusCode, Message: msg, Transient: transientStatus[resp.StatusCode],
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// parseUpstreamBody decodes an answer body; an empty body is an empty
// answer, a body over the read cap or not a JSON object is an error.
func parseUpstreamBody(body []byte) (upstreamBody, error) {
	var b upstreamBody
	if len(body) > maxResponseRead {
		return b, errors.New("body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return b, nil
	}
	err := json.Unmarshal(body, &b)
	return b, err
}

// upstreamHost is the host (and port, if any) of the -upstream-url
// template, to name the upstream in messages.
func upstreamHost(template string) string {
	u, err := url.Parse(strings.ReplaceAll(template, "{number}", "0"))
	if err != nil || u.Host == "" {
		return "upstream"
	}
	return u.Host
}
