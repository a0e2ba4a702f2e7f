package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// oapiContract is the embedded OpenAPI document, loaded and validated, with
// a router over its operations. It checks real exchanges against the
// document and remembers which documented answers it has seen.
type oapiContract struct {
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool // "GET /v3/bulk_restore_status 200"
}

// loadOAPIContract loads and validates the embedded document.
func loadOAPIContract(t testing.TB) *oapiContract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router over openapi.yaml: %v", err)
	}
	return &oapiContract{doc: doc, router: router, seen: map[string]bool{}}
}

// oapiRequest is one request of a contract test. Unless noAuth, it carries
// Basic credentials, demo/demo unless user and key say otherwise.
type oapiRequest struct {
	method      string
	path        string // with its query
	contentType string
	body        []byte
	header      map[string]string
	noAuth      bool
	user, key   string
	want        int  // the expected status; 0 for any
	invalid     bool // the document itself must reject this request
	unchecked   bool // the document cannot tell (a malformed header)
	trickle     bool // send body, then hold the rest of a longer one back until the answer
}

// oapiResponse is a real answer, already checked against the document.
type oapiResponse struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any // the JSON object, when the body is one
}

// oapiAuthenticate is the security check of request validation: Basic
// credentials, or a bearer token on the admin API, must be present
// (whether they are right is the server's business).
func oapiAuthenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s, req := in.SecurityScheme, in.RequestValidationInput.Request
	switch {
	case s == nil || s.Type != "http" || s.Scheme != "basic" && s.Scheme != "bearer":
		return in.NewError(fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName))
	case s.Scheme == "bearer":
		if scheme, token, _ := strings.Cut(req.Header.Get("Authorization"), " "); !strings.EqualFold(scheme, "Bearer") || token == "" {
			return in.NewError(errors.New("no bearer token"))
		}
	default:
		if _, _, ok := req.BasicAuth(); !ok {
			return in.NewError(errors.New("no Basic credentials"))
		}
	}
	return nil
}

// oapiOptions are the validation options: every status must be documented.
var oapiOptions = &openapi3filter.Options{
	IncludeResponseStatus: true,
	MultiError:            true,
	AuthenticationFunc:    oapiAuthenticate,
}

// newRequest builds the HTTP request of rq against base.
func (rq oapiRequest) newRequest(t testing.TB, base string) *http.Request {
	t.Helper()
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, base+rq.path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if !rq.noAuth {
		user, key := rq.user, rq.key
		if user == "" && key == "" {
			user, key = "demo", "demo"
		}
		req.SetBasicAuth(user, key)
	}
	return req
}

// oapiClient does not follow redirects: every answer is checked as it is.
var oapiClient = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends rq to the server at base, checks the request and the answer
// against the document, and returns the answer.
func (c *oapiContract) do(t testing.TB, base string, rq oapiRequest) oapiResponse {
	t.Helper()
	req := rq.newRequest(t, base)
	if rq.trickle {
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write(rq.body) // and nothing more until the answer
		req.Body, req.ContentLength = pr, int64(len(rq.body))+64<<10
	}
	resp, err := oapiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.method, rq.path, err)
	}
	out := oapiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(raw, &out.Body)
	}
	if rq.want != 0 && out.Status != rq.want {
		t.Fatalf("%s %s: status %d, want %d: %s", rq.method, rq.path, out.Status, rq.want, clip(raw))
	}
	c.check(t, base, rq, out)
	return out
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// check validates one exchange: the request against its operation (it
// must pass, or fail when rq.invalid), then the answer, whose status must be
// documented. Answers of no operation (unknown path, unknown method) are
// checked as info.description says they are.
func (c *oapiContract) check(t testing.TB, base string, rq oapiRequest, out oapiResponse) {
	t.Helper()
	ctx := context.Background()
	where := fmt.Sprintf("%s %s → %d", rq.method, rq.path, out.Status)
	req := rq.newRequest(t, base)
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound) && out.Status == http.StatusNotFound,
		errors.Is(err, routers.ErrMethodNotAllowed) && out.Status == http.StatusMethodNotAllowed:
		c.checkNoOperation(t, where, req, out)
		return
	case err != nil:
		t.Fatalf("%s: the document has no such operation (%v), yet the server answered %d: %s", where, err, out.Status, clip(out.Raw))
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: oapiOptions}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if rq.invalid && reqErr == nil && !rq.unchecked {
		t.Errorf("%s: the server refused this request but the document accepts it", where)
	}
	if !rq.invalid && reqErr != nil && !rq.unchecked {
		t.Errorf("%s: the document refuses a request the server takes: %v", where, reqErr)
	}
	key := c.responseKey(route, out.Status)
	if key == "" {
		t.Fatalf("%s: status %d is not documented for %s %s: %s", where, out.Status, route.Method, route.Path, clip(out.Raw))
	}
	c.mu.Lock()
	c.seen[route.Method+" "+route.Path+" "+key] = true
	c.mu.Unlock()
	resIn := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: out.Status, Header: out.Header, Options: oapiOptions}
	resIn.SetBodyBytes(out.Raw)
	if err := openapi3filter.ValidateResponse(ctx, resIn); err != nil {
		t.Errorf("%s: the answer does not match the document: %v\nbody: %s", where, err, clip(out.Raw))
	}
}

// responseKey is the key of the operation's response that documents
// status ("404", or a range such as "4XX"), or "" when none does.
func (c *oapiContract) responseKey(route *routers.Route, status int) string {
	responses := route.Operation.Responses
	if responses.Value(strconv.Itoa(status)) != nil {
		return strconv.Itoa(status)
	}
	if r := strconv.Itoa(status/100) + "XX"; responses.Value(r) != nil {
		return r
	}
	return ""
}

// noOperationAnswers are the statuses info.description gives to requests
// that reach no operation: no such path, no such method.
var noOperationAnswers = []int{http.StatusNotFound, http.StatusMethodNotAllowed}

// checkNoOperation validates an answer of no operation as info.description
// describes it (the error body of components.schemas.Error, with
// X-Request-Id), as if an operation answered with it.
func (c *oapiContract) checkNoOperation(t testing.TB, where string, req *http.Request, out oapiResponse) {
	t.Helper()
	schema, header := c.doc.Components.Schemas["Error"], c.doc.Components.Headers["RequestId"]
	if schema == nil || header == nil {
		t.Fatalf("%s: components lack schemas.Error or headers.RequestId", where)
	}
	res := openapi3.NewResponse().WithDescription("no operation").WithJSONSchemaRef(schema)
	res.Headers = openapi3.Headers{"X-Request-Id": header}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(out.Status, &openapi3.ResponseRef{Value: res}))
	route := &routers.Route{Spec: c.doc, Path: req.URL.Path, PathItem: &openapi3.PathItem{}, Method: req.Method, Operation: op}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: oapiOptions},
		Status:                 out.Status, Header: out.Header, Options: oapiOptions,
	}
	in.SetBodyBytes(out.Raw)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s: the answer does not match the answer of no operation: %v\nbody: %s", where, err, clip(out.Raw))
	}
	c.mu.Lock()
	c.seen["no operation "+strconv.Itoa(out.Status)] = true
	c.mu.Unlock()
}

// checkWebhooks validates webhook messages a receiver got against the
// document's jobFinished webhook and returns how many there were.
func (c *oapiContract) checkWebhooks(t testing.TB, msgs []oapiWebhook) int {
	t.Helper()
	item := c.doc.Webhooks["jobFinished"]
	if item == nil || item.Post == nil {
		t.Fatal("the document has no jobFinished webhook")
	}
	for i, m := range msgs {
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/hook", bytes.NewReader(m.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = m.header
		route := &routers.Route{Spec: c.doc, Path: "jobFinished", PathItem: item, Method: http.MethodPost, Operation: item.Post}
		in := &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: oapiOptions}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("webhook message %d does not match the document: %v\nheaders %v\nbody: %s", i, err, m.header, clip(m.body))
		}
	}
	if len(msgs) > 0 {
		c.mu.Lock()
		c.seen["webhook jobFinished"] = true
		c.mu.Unlock()
	}
	return len(msgs)
}

// notProvoked says why a documented answer is not provoked by the contract
// test, or "" when it must be.
func notProvoked(method, path, key string) string {
	switch {
	case path == "/metrics":
		return "/metrics is tested where it is built"
	case key == "503":
		return "storage unavailable (full disk) and an unreachable database are not provoked here"
	case method == http.MethodHead && key != "200":
		return "a HEAD answer is its GET answer without a body; the GET errors are provoked"
	}
	return ""
}

// checkCoverage fails for every documented answer that no exchange
// produced, unless notProvoked excuses it.
func (c *oapiContract) checkCoverage(t *testing.T) {
	t.Helper()
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for key := range op.Responses.Map() {
				if !c.seen[method+" "+path+" "+key] && notProvoked(method, path, key) == "" {
					missing = append(missing, method+" "+path+" "+key)
				}
			}
		}
	}
	if !c.seen["webhook jobFinished"] {
		missing = append(missing, "webhooks.jobFinished")
	}
	for _, status := range noOperationAnswers {
		if key := "no operation " + strconv.Itoa(status); !c.seen[key] {
			missing = append(missing, key)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("documented but never provoked: %s", m)
	}
}

// TestOpenAPIDocumentIsValid loads openapi.yaml with kin-openapi, validates
// it as OpenAPI 3.1, and checks the rules the document keeps to.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	c := loadOAPIContract(t)
	if c.doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi=%q, want 3.1.0", c.doc.OpenAPI)
	}
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil || !bytes.Equal(onDisk, openAPIDocument) {
		t.Fatalf("the embedded document differs from openapi.yaml (err %v)", err)
	}
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			}
			v3, admin := strings.HasPrefix(path, "/v3/"), strings.HasPrefix(path, "/admin/")
			if open := op.Security != nil && len(*op.Security) == 0; open == (v3 || admin) {
				t.Errorf("%s: security must be Basic exactly on /v3, the admin token on /admin (open=%v)", name, open)
			}
			if bearer := op.Security != nil && len(*op.Security) == 1 && (*op.Security)[0]["adminBearer"] != nil; bearer != admin {
				t.Errorf("%s: the admin token must be the security of /admin alone (admin=%v)", name, admin)
			}
			if (v3 || admin) && op.Responses.Value("401") == nil {
				t.Errorf("%s documents no 401", name)
			}
		}
	}
	// kin-openapi checks `example` but not the OpenAPI 3.1 `examples` of a
	// schema: check those here.
	for name, ref := range c.doc.Components.Schemas {
		checkSchemaExamples(t, name, ref.Value)
	}
	// Every response object is closed, so that an undocumented field fails.
	for name, ref := range c.doc.Components.Schemas {
		s := ref.Value
		if !s.Type.Is("object") || len(s.Properties) == 0 || strings.HasPrefix(name, "BulkRestoreRe") || name == "BulkRestoreForm" {
			continue
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("schema %s does not say additionalProperties: false", name)
		}
		for _, r := range s.Required {
			if s.Properties[r] == nil {
				t.Errorf("schema %s requires %s, which it does not define", name, r)
			}
		}
	}
}

// checkSchemaExamples validates the examples of a schema and of its
// properties against them.
func checkSchemaExamples(t *testing.T, name string, s *openapi3.Schema) {
	t.Helper()
	for i, ex := range s.Examples {
		if err := s.VisitJSON(ex, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("schema %s: examples[%d] does not match it: %v", name, i, err)
		}
	}
	for prop, ref := range s.Properties {
		if ref.Ref == "" { // a referenced schema is checked under its own name
			checkSchemaExamples(t, name+"."+prop, ref.Value)
		}
	}
}

// TestOpenAPIServesTheEmbeddedDocument checks that GET /openapi.yaml serves
// exactly the embedded bytes, without auth.
func TestOpenAPIServesTheEmbeddedDocument(t *testing.T) {
	c := loadOAPIContract(t)
	s := startServer(t, "-dev")
	got := c.do(t, s.URL, oapiRequest{method: http.MethodGet, path: "/openapi.yaml", noAuth: true, want: http.StatusOK})
	if !bytes.Equal(got.Raw, openAPIDocument) {
		t.Fatalf("GET /openapi.yaml served %d bytes that differ from the %d embedded", len(got.Raw), len(openAPIDocument))
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("Content-Type=%q, want application/yaml", ct)
	}
	head := c.do(t, s.URL, oapiRequest{method: http.MethodHead, path: "/openapi.yaml", noAuth: true, want: http.StatusOK})
	if len(head.Raw) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(openAPIDocument)) {
		t.Fatalf("HEAD /openapi.yaml: %d body bytes, Content-Length %q", len(head.Raw), head.Header.Get("Content-Length"))
	}
}

// TestOpenAPIContract drives real servers through every endpoint and every
// error status that can be provoked, validates each request and answer
// against openapi.yaml, and then checks that every documented answer was
// seen.
func TestOpenAPIContract(t *testing.T) {
	c := loadOAPIContract(t)
	scenarios := []struct {
		name string
		run  func(*testing.T, *oapiContract)
	}{
		{"inventory", oapiInventoryScenario},
		{"request_errors", oapiRequestErrorScenario},
		{"rate_limit", oapiRateLimitScenario},
		{"backend", oapiBackendScenario},
		{"broken_storage", oapiBrokenStorageScenario},
		{"dry_run_and_retry", oapiDryRunRetryScenario},
		{"results", oapiResultsScenario},
		{"admin", oapiAdminScenario},
	}
	passed := 0
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t, c)
			if !t.Failed() {
				passed++
			}
		})
	}
	if passed != len(scenarios) {
		t.Logf("coverage not checked: %d of %d scenarios ran and passed", passed, len(scenarios))
		return
	}
	c.checkCoverage(t)
}
