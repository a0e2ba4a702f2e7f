package main

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
)

// The Markdown link check: whoever clones the repository must be able to
// follow every link of its documents. A relative link or image must name a
// file (or folder) of the repository without climbing out of it, an anchor
// must name a heading of its document, and a document must not mention a
// .md file that the repository does not have.

// mdRef is one link target, or one mention of a .md file, and its line.
type mdRef struct {
	line   int
	target string
}

// mdDoc is what the check reads from one Markdown file.
type mdDoc struct {
	links    []mdRef         // inline, reference-style and HTML links and images
	mentions []mdRef         // names of .md files in the text, code spans included
	anchors  map[string]bool // the anchors its headings (and HTML ids) make
}

// Patterns of the Markdown the repository's documents use.
var (
	mdFence     = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	mdHeading   = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	mdSetext    = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	mdInline    = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\([ \t]*<?([^\s<>()]*)>?(?:[ \t]+(?:"[^"]*"|'[^']*'))?[ \t]*\)`)
	mdRefDef    = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s<>]+)>?`)
	mdHTMLLink  = regexp.MustCompile(`(?i)<(?:a|img)\b[^>]*?\s(?:href|src)\s*=\s*["']([^"']*)["']`)
	mdHTMLID    = regexp.MustCompile(`(?i)<[a-z]+\b[^>]*?\s(?:id|name)\s*=\s*["']([^"']+)["']`)
	mdMention   = regexp.MustCompile(`(?:^|[^\w./-])((?:\.{0,2}/)?(?:[\w.-]+/)*[\w-][\w.-]*\.md)\b`)
	mdURL       = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s)>\]]*`)
	mdMdLink    = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	mdHasScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// parseMarkdown reads the links, mentions and anchors of one document.
// Fenced code blocks are skipped; code spans hide links but not mentions.
func parseMarkdown(text string) mdDoc {
	doc := mdDoc{anchors: map[string]bool{}}
	slugs := map[string]int{}
	addHeading := func(h string) {
		s := githubSlug(h)
		if n := slugs[s]; n > 0 {
			doc.anchors[s+"-"+strconv.Itoa(n)] = true
		} else {
			doc.anchors[s] = true
		}
		slugs[s]++
	}
	lines := strings.Split(text, "\n")
	fence, prev := "", ""
	for i, line := range lines {
		if m := mdFence.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(line) == m[1]:
				fence = ""
			}
			prev = ""
			continue
		}
		if fence != "" {
			continue
		}
		n := i + 1
		plain := blankCodeSpans(line)
		if m := mdHeading.FindStringSubmatch(plain); m != nil {
			addHeading(line[strings.Index(line, "#"):])
		} else if mdSetext.MatchString(line) && strings.TrimSpace(prev) != "" && !strings.HasPrefix(strings.TrimSpace(prev), "|") {
			addHeading(prev)
		}
		linked := map[string]bool{} // a link is checked as a link, not again as a mention
		for _, re := range []*regexp.Regexp{mdInline, mdRefDef, mdHTMLLink} {
			for _, m := range re.FindAllStringSubmatch(plain, -1) {
				doc.links = append(doc.links, mdRef{n, m[1]})
				file, _, _ := strings.Cut(m[1], "#")
				linked[file] = true
			}
		}
		for _, m := range mdHTMLID.FindAllStringSubmatch(plain, -1) {
			doc.anchors[m[1]] = true
		}
		for _, m := range mdMention.FindAllStringSubmatch(mdURL.ReplaceAllString(line, " "), -1) {
			if !linked[m[1]] {
				doc.mentions = append(doc.mentions, mdRef{n, m[1]})
			}
		}
		prev = line
	}
	return doc
}

// blankCodeSpans replaces the inside of every code span with spaces, so
// that what a span shows is not read as a link.
func blankCodeSpans(line string) string {
	b := []byte(line)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		run := 1
		for i+run < len(b) && b[i+run] == '`' {
			run++
		}
		ticks := strings.Repeat("`", run)
		end := strings.Index(string(b[i+run:]), ticks)
		if end < 0 {
			i += run
			continue
		}
		for j := i + run; j < i+run+end; j++ {
			b[j] = ' '
		}
		i += 2*run + end
	}
	return string(b)
}

// githubSlug is the anchor GitHub gives a heading: its text without markup,
// lower case, without punctuation but - and _, spaces as hyphens.
func githubSlug(heading string) string {
	h := strings.TrimLeft(strings.TrimSpace(heading), "#")
	h = strings.TrimRight(strings.TrimSpace(h), "#")
	h = mdMdLink.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r) || r == '_' || r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// mdRepo is a repository as the check sees it: its files, and the
// Markdown documents among them, parsed.
type mdRepo struct {
	files map[string]bool // slash-separated paths from the root
	docs  map[string]mdDoc
}

// newMDRepo parses the .md files among files with read.
func newMDRepo(files []string, read func(string) (string, error)) (mdRepo, error) {
	r := mdRepo{files: map[string]bool{}, docs: map[string]mdDoc{}}
	for _, f := range files {
		r.files[f] = true
		if strings.EqualFold(path.Ext(f), ".md") {
			text, err := read(f)
			if err != nil {
				return r, err
			}
			r.docs[f] = parseMarkdown(text)
		}
	}
	return r, nil
}

// resolve turns a target written in document from into a path from the
// root, or says why it leaves the repository.
func (r mdRepo) resolve(from, target string) (string, error) {
	if strings.HasPrefix(target, "/") {
		return "", errors.New("is an absolute path: write it relative to " + from)
	}
	p := path.Join(path.Dir(from), target)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("climbs out of the repository")
	}
	return p, nil
}

// exists reports whether p is a file of the repository or a folder of some.
func (r mdRepo) exists(p string) bool {
	if p == "." || r.files[p] {
		return true
	}
	for f := range r.files {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

// check returns every problem of every document, as "file:line: what".
func (r mdRepo) check() []string {
	var problems []string
	names := mapKeys(r.docs)
	slices.Sort(names)
	for _, name := range names {
		doc := r.docs[name]
		report := func(line int, format string, args ...any) {
			problems = append(problems, name+":"+strconv.Itoa(line)+": "+fmt.Sprintf(format, args...))
		}
		for _, l := range doc.links {
			if msg := r.checkLink(name, l.target); msg != "" {
				report(l.line, "link %q %s", l.target, msg)
			}
		}
		for _, m := range doc.mentions {
			p, err := r.resolve(name, m.target)
			if err != nil {
				report(m.line, "mentions %s, which %v", m.target, err)
			} else if !r.exists(p) && !r.exists(path.Clean(m.target)) {
				report(m.line, "mentions %s, which the repository does not have", m.target)
			}
		}
	}
	return problems
}

// checkLink says what is wrong with one link of document from, or "".
func (r mdRepo) checkLink(from, target string) string {
	if mdHasScheme.MatchString(target) {
		return "" // a web address, not a file of the repository
	}
	if target == "" {
		return "is empty"
	}
	file, anchor, _ := strings.Cut(target, "#")
	p := from
	if file != "" {
		unescaped, err := url.PathUnescape(file)
		if err != nil {
			return "is not a valid path: " + err.Error()
		}
		if p, err = r.resolve(from, unescaped); err != nil {
			return err.Error()
		}
		if !r.exists(p) {
			return "names " + p + ", which the repository does not have"
		}
	}
	doc, isDoc := r.docs[p]
	if anchor == "" || !isDoc {
		return ""
	}
	if a, err := url.PathUnescape(anchor); err != nil || !doc.anchors[strings.ToLower(a)] {
		return "names an anchor no heading of " + p + " makes"
	}
	return ""
}

// mapKeys returns the keys of m.
func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestMarkdownLinksStayInTheRepository checks every Markdown document of the
// repository (tracked, or new and not ignored) as a fresh clone has them.
func TestMarkdownLinksStayInTheRepository(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files (the check reads the files of a git checkout): %v", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if _, err := os.Stat(f); f != "" && err == nil {
			files = append(files, f)
		}
	}
	repo, err := newMDRepo(files, func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return string(b), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if repo.docs["README.md"].anchors == nil {
		t.Fatalf("README.md is not among the %d files git lists", len(files))
	}
	for _, p := range repo.check() {
		t.Error(p)
	}
}

// TestMarkdownLinkCheck runs the check on a small repository whose
// docs/GUIDE.md holds each case.
func TestMarkdownLinkCheck(t *testing.T) {
	base := map[string]string{
		"README.md":                  "# bulkrestore\n\n## The API in brief\n\nText.\n",
		"docs/API.md":                "# API\n\n## Errors\n\n## Errors\n\nSetext heading\n---\n",
		"deploy/bulkrestore.service": "",
	}
	cases := []struct {
		name  string
		guide string
		want  string // a part of the one problem expected; "" for none
	}{
		{"a link to a file of the repository passes", "[api](API.md)", ""},
		{"a link that climbs to the root and stays inside passes", "[readme](../README.md)", ""},
		{"a link to a folder of the repository passes", "[unit](../deploy/)", ""},
		{"a link to a missing file fails", "[design](../DESIGN.md)", "which the repository does not have"},
		{"a link that climbs out of the repository fails", "[contract](../../shared/API.md)", "climbs out"},
		{"a link to an absolute path fails", "[x](/etc/hosts)", "absolute path"},
		{"an image of a missing file fails", "![chart](chart.png)", "docs/chart.png"},
		{"a reference-style link to a missing file fails", "See [the design][d].\n\n[d]: ../DESIGN.txt", "DESIGN.txt"},
		{"an HTML link to a missing file fails", `<a href="nope.html">x</a>`, "docs/nope.html"},
		{"an anchor of a heading of another document passes", "[brief](../README.md#the-api-in-brief)", ""},
		{"the numbered anchor of a repeated heading passes", "[second](API.md#errors-1)", ""},
		{"the anchor of a setext heading passes", "[s](API.md#setext-heading)", ""},
		{"an anchor no heading makes fails", "[x](../README.md#design)", "anchor"},
		{"an anchor of a heading of the same document passes", "## Set `-dev` up\n\n[up](#set--dev-up)", ""},
		{"an anchor missing from the same document fails", "[x](#nowhere)", "anchor"},
		{"a web address is not checked", "[sw](https://www.standardwebhooks.com/) <https://example.com/x.md>", ""},
		{"a link shown in a code span is not read", "`[x](nope.txt)` is how a link looks", ""},
		{"a link in a fenced code block is not read", "```md\n[x](nope.txt)\n```", ""},
		{"a mention of a missing .md file fails", "As `DESIGN.md` says.", "mentions DESIGN.md"},
		{"a mention of .md files of the repository passes", "See `README.md` and docs/API.md.", ""},
		{"a mention that climbs out of the repository fails", "The contract is ../../shared/API.md.", "climbs out"},
		{"a mention of an absolute path fails", "Read /work/shared/API.md first.", "absolute path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"docs/GUIDE.md": "# Guide\n\n" + c.guide + "\n"}
			for k, v := range base {
				files[k] = v
			}
			repo, err := newMDRepo(mapKeys(files), func(p string) (string, error) { return files[p], nil })
			if err != nil {
				t.Fatal(err)
			}
			got := repo.check()
			switch {
			case c.want == "" && len(got) != 0:
				t.Fatalf("problems %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Fatalf("problems %q, want one about %q", got, c.want)
			}
		})
	}
}

// TestAPIReferenceNamesEveryOperation keeps docs/API.md in step with
// openapi.yaml: every path has a section of the reference whose title names
// it (or a table row, for the small endpoints) with each of its methods,
// every status code an operation documents is named in that section or in
// the sections that hold for every endpoint (Conventions, Limits), and every
// header of the webhook is named.
func TestAPIReferenceNamesEveryOperation(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	text, err := os.ReadFile("docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // "## " title -> its text
	for _, s := range strings.Split("\n"+string(text), "\n## ")[1:] {
		title, _, _ := strings.Cut(s, "\n")
		sections[title] = s
	}
	everywhere := sections["Conventions"] + sections["Limits"]
	for _, p := range slices.Sorted(maps.Keys(doc.Paths.Map())) {
		section, names := apiSection(sections, p)
		if section == "" {
			t.Errorf("docs/API.md has no section that names %s", p)
			continue
		}
		for method, op := range doc.Paths.Value(p).Operations() {
			if !strings.Contains(names, "`"+method+"`") && !strings.Contains(names, "`"+method+" ") {
				t.Errorf("docs/API.md: the section about %s does not name %s", p, method)
			}
			for code := range op.Responses.Map() {
				if _, err := strconv.Atoi(code); err == nil && !strings.Contains(section+everywhere, "`"+code+"`") {
					t.Errorf("docs/API.md: %s %s can answer %s, which its section does not name", method, p, code)
				}
			}
		}
	}
	for _, param := range doc.Webhooks["jobFinished"].Post.Parameters {
		if !strings.Contains(sections["Webhooks"], "`"+param.Value.Name+"`") {
			t.Errorf("docs/API.md: the Webhooks section does not name the %s header", param.Value.Name)
		}
	}
}

// apiSection finds the section of docs/API.md about path: the one whose
// title names it, else one with a table row that does. It returns the
// section and the line that names the path (title or row).
func apiSection(sections map[string]string, path string) (section, names string) {
	for title, s := range sections {
		if strings.Contains(title, path+"`") {
			return s, title
		}
	}
	for _, s := range sections {
		for line := range strings.SplitSeq(s, "\n") {
			if strings.HasPrefix(line, "| ") && strings.Contains(line, path+"`") {
				return s, line
			}
		}
	}
	return "", ""
}
