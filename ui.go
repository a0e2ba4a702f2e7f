package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"path"
	"time"
)

// The console's pages and files, embedded: html/template pages rendered on
// the server, a stylesheet, and htmx (vendored from npm, see
// ARCHITECTURE.md) for the parts of a page that update themselves.

//go:embed ui/templates/*.html ui/static/*
var uiFiles embed.FS

// uiPageNames are the console's pages: each is ui/templates/NAME.html
// rendered inside layout.html.
var uiPageNames = []string{"sign_in", "jobs", "job", "number", "numbers", "restore", "error",
	"admin_users", "admin_delete", "admin_jobs", "admin_queue"}

// uiTemplates are the parsed pages, by name.
var uiTemplates = mustParseUITemplates()

// uiFuncs are the helpers the templates use.
var uiFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format(timeLayout)
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"took": func(start, end time.Time) int64 { return end.Sub(start).Milliseconds() },
	"percent": func(part, whole int) int {
		if whole <= 0 {
			return 0
		}
		return part * 100 / whole
	},
	"add":    func(a, b int) int { return a + b },
	"active": func(s jobStatus) bool { return s.active() },
	"static": staticURL,
}

// mustParseUITemplates parses every page with the layout; a broken template
// stops the program at start (and every test).
func mustParseUITemplates() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(uiFuncs).ParseFS(uiFiles, "ui/templates/layout.html"))
	pages := map[string]*template.Template{}
	for _, name := range uiPageNames {
		t := template.Must(template.Must(layout.Clone()).ParseFS(uiFiles, "ui/templates/"+name+".html"))
		pages[name] = t
	}
	return pages
}

// renderUI renders a page whole (fragment "") or one fragment of it (a
// part that a page polls for) into memory, so that a template error is a
// clean 500 and not half a page.
func renderUI(page, fragment string, view any) ([]byte, error) {
	t, ok := uiTemplates[page]
	if !ok {
		return nil, fmt.Errorf("no console page %q", page)
	}
	name := "layout.html"
	if fragment != "" {
		name = fragment
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, view); err != nil {
		return nil, fmt.Errorf("render %s: %w", page, err)
	}
	return b.Bytes(), nil
}

// staticFile is one embedded file of ui/static with what it is served with.
type staticFile struct {
	body        []byte
	etag        string
	contentType string
}

// uiStatic are the files of ui/static, by name.
var uiStatic = mustLoadStatic()

// mustLoadStatic reads ui/static and hashes each file for its ETag.
func mustLoadStatic() map[string]staticFile {
	files := map[string]staticFile{}
	entries, err := fs.ReadDir(uiFiles, "ui/static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		body, err := uiFiles.ReadFile("ui/static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		files[e.Name()] = staticFile{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ctype}
	}
	return files
}

// staticURL is the address of a file of ui/static, with its hash, so that
// a new version is never taken from a cache; it panics for a missing file,
// which every page render in the tests would show.
func staticURL(name string) string {
	f, ok := uiStatic[name]
	if !ok {
		panic("no static file " + name)
	}
	return "/ui/static/" + name + "?v=" + f.etag[1:len(f.etag)-1]
}

// uiBase is what the layout of every page needs.
type uiBase struct {
	Title   string
	Nav     string      // the navigation entry of this page
	Session *sessionRow // nil when signed out
	Notice  string      // a message of success
	Error   string      // a message of failure
}

// CSRF is the session's token, for forms and htmx's requests.
func (b uiBase) CSRF() string {
	if b.Session == nil {
		return ""
	}
	return b.Session.CSRF
}

// payloadPreviewMax bounds the webhook payload a job page shows inline;
// the whole payload is a download.
const payloadPreviewMax = 64 << 10

// errPreviewFull stops rendering a payload preview once it is long enough.
var errPreviewFull = errors.New("preview full")

// capWriter keeps the first max bytes written to it, then refuses more.
type capWriter struct {
	b   bytes.Buffer
	max int
}

// Write implements io.Writer.
func (c *capWriter) Write(p []byte) (int, error) {
	room := c.max - c.b.Len()
	if len(p) > room {
		c.b.Write(p[:room])
		return room, errPreviewFull
	}
	return c.b.Write(p)
}

// webhookPayload describes the final payload of a finished job: the body
// its webhook carries, rendered from the stored results as the sender
// renders it.
func (a *app) webhookPayload(ctx context.Context, job Job) jobPayload {
	return jobPayload{kind: finalPayload, job: job, results: func(fn func(NumberResult) error) error {
		return a.store.eachResult(ctx, job.ID, "", 0, -1, fn)
	}}
}

// payloadPreview renders the start of a finished job's webhook payload:
// indented when it is whole within payloadPreviewMax, else the first
// payloadPreviewMax bytes as sent, with whole false.
func (a *app) payloadPreview(ctx context.Context, job Job) (text string, whole bool, err error) {
	w := &capWriter{max: payloadPreviewMax}
	err = a.webhookPayload(ctx, job).write(w)
	if errors.Is(err, errPreviewFull) {
		return w.b.String(), false, nil
	}
	if err != nil {
		return "", false, err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, w.b.Bytes(), "", "  "); err != nil {
		return "", false, err
	}
	return pretty.String(), true, nil
}
