package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// dialect supplies the SQL text of the database under a store. The store's
// statements are written once, in SQLite's dialect, where they have always
// been; a statement that PostgreSQL must say differently (json_each,
// INSERT OR IGNORE, INDEXED BY, a lock on the rows it will update) has its
// PostgreSQL text registered beside it with pgText. SQLite runs every
// statement as written, at no cost; PostgreSQL runs the registered text, or
// the statement itself, with SQLite's placeholders (? and ?NNN) turned into
// PostgreSQL's ($N) once and cached.
type dialect struct {
	pg    bool
	texts sync.Map // PostgreSQL: SQLite text -> PostgreSQL text, placeholders rebound
}

// The two dialects. The PostgreSQL one is shared by every PostgreSQL store
// of the process, so its cache is filled once.
var (
	sqliteDialect = &dialect{}
	pgDialect     = &dialect{pg: true}
)

// pgTexts maps the SQLite text of a statement to its PostgreSQL text, for
// the statements that differ by more than their placeholders. It is filled
// while the package initialises (by pgText) and only read afterwards.
var pgTexts = map[string]string{}

// pgText registers pg as the PostgreSQL text of the statement whose SQLite
// text is sqlite, and returns pg. Each store file registers its own beside
// the SQLite text: var _ = pgText(someSQL, `...`).
func pgText(sqlite, pg string) string {
	if _, dup := pgTexts[sqlite]; dup {
		panic("two PostgreSQL texts for one statement: " + sqlite)
	}
	pgTexts[sqlite] = pg
	return pg
}

// sqliteOnly are fragments of SQLite's dialect that PostgreSQL does not
// know: a statement that still holds one after its PostgreSQL text was
// looked up has no such text, a mistake in this program.
var sqliteOnly = []string{"json_each", "INDEXED BY", "OR IGNORE", "PRAGMA", "X''", "json_group_array", "AUTOINCREMENT"}

// q returns the text to run for query, a statement written in SQLite's
// dialect.
func (d *dialect) q(query string) string {
	if !d.pg {
		return query
	}
	if t, ok := d.texts.Load(query); ok {
		return t.(string)
	}
	text, ok := pgTexts[query]
	if !ok {
		text = query
	}
	text = rebind(text)
	for _, frag := range sqliteOnly {
		if strings.Contains(text, frag) {
			panic(fmt.Sprintf("statement has no PostgreSQL text (it holds %q): %s", frag, query))
		}
	}
	d.texts.Store(query, text)
	return text
}

// rebind turns SQLite's placeholders into PostgreSQL's: ?NNN becomes $NNN,
// and a bare ? the next number after the largest used so far (SQLite's
// rule). Quoted strings, quoted names and comments are left alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	highest := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			n := highest + 1
			if j > i+1 {
				n, _ = strconv.Atoi(query[i+1 : j])
			}
			highest = max(highest, n)
			b.WriteString("$" + strconv.Itoa(n))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// q returns the text of query, written in SQLite's dialect, for this
// store's database.
func (s *Store) q(query string) string { return s.d.q(query) }

// inJSON is the condition "is one of the values of the JSON array in
// param", in this store's dialect; typ is the column's PostgreSQL type,
// to which the array's elements are cast. PostgreSQL's is an array the
// index scan takes as it is, whatever the planner knows of the table.
func (s *Store) inJSON(param, typ string) string {
	if s.d.pg {
		return "= ANY(ARRAY(SELECT json_array_elements_text(" + param + "::json)::" + typ + "))"
	}
	return "IN (SELECT value FROM json_each(" + param + "))"
}

// jobCols is jobColumns in this store's dialect.
func (s *Store) jobCols() string {
	if s.d.pg {
		return jobColumnsPG
	}
	return jobColumns
}

// resultCols is resultColumns in this store's dialect.
func (s *Store) resultCols() string {
	if s.d.pg {
		return resultColumnsPG
	}
	return resultColumns
}

// indexedBy is SQLite's INDEXED BY clause naming index, which tells its
// planner what statistics would; PostgreSQL keeps statistics of its own
// and has no such clause.
func (s *Store) indexedBy(index string) string {
	if s.d.pg {
		return ""
	}
	return " INDEXED BY " + index
}

// limitParam is a LIMIT's placeholder, where a negative value is no limit
// (SQLite's rule; PostgreSQL's no limit is NULL).
func (s *Store) limitParam() string {
	if s.d.pg {
		return "nullif(greatest(?::bigint, -1), -1)"
	}
	return "?"
}
