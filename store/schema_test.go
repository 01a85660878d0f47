package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// The two migration trees, store/migrations/sqlite and
// store/migrations/postgres, must build the same schema: the store runs one
// set of queries on both. TestSchemaParity migrates a fresh database of each
// dialect, reads back what the migrations built and compares:
//
//   - tables and views;
//   - per table, each column's type class (text, integer, real, blob,
//     boolean), nullability, default and whether it is generated, and the
//     primary key;
//   - indexes by name: unique or not, access method, key columns or
//     expressions in order with their direction, and a partial index's
//     predicate; unique constraints (SQLite's autoindexes, PostgreSQL's
//     UNIQUE constraints) by their columns;
//   - foreign keys: columns, referenced table and columns, ON UPDATE and ON
//     DELETE actions;
//   - triggers, by name.
//
// Not compared: CHECK constraints, collations, NULLS FIRST/LAST (each
// dialect sorts NULLs its own way and SQLite cannot say otherwise in an
// index), integer widths (SQLite's INTEGER is always 64 bits), column order.

// schemaByDesign lists what one dialect has and the other has not, on
// purpose, with the reason. An entry that no longer matches anything, or
// that the other dialect now has too, fails the test.
var schemaByDesign = map[string][]byDesign{
	"sqlite": {
		{factKey{"messages_fts", ""}, "full-text search on SQLite is an FTS5 virtual table (dialect.searchJoin); PostgreSQL has messages.tsv"},
		{factKey{"messages_fts_config", ""}, "FTS5's shadow table of messages_fts"},
		{factKey{"messages_fts_content", ""}, "FTS5's shadow table of messages_fts"},
		{factKey{"messages_fts_data", ""}, "FTS5's shadow table of messages_fts"},
		{factKey{"messages_fts_docsize", ""}, "FTS5's shadow table of messages_fts"},
		{factKey{"messages_fts_idx", ""}, "FTS5's shadow table of messages_fts"},
		{factKey{"messages", "trigger messages_fts_insert"}, "keeps messages_fts in step with messages"},
		{factKey{"messages", "trigger messages_fts_delete"}, "keeps messages_fts in step with messages"},
		{factKey{"messages", "trigger messages_fts_update"}, "keeps messages_fts in step with messages"},
	},
	"postgres": {
		{factKey{"messages", "column tsv"}, "full-text search on PostgreSQL is a generated tsvector (dialect.searchJoin); SQLite has messages_fts"},
		{factKey{"messages", "index messages_tsv"}, "the GIN index that searches messages.tsv"},
	},
}

type byDesign struct {
	key    factKey
	reason string
}

// factKey names one thing in a schema: a table (item "") or something of
// that table ("column x", "primary key", "index x", "unique (a, b)",
// "foreign key (a)", "trigger x").
type factKey struct{ table, item string }

func (k factKey) String() string {
	if k.item == "" {
		return "table " + k.table
	}
	return "table " + k.table + ", " + k.item
}

// schemaFacts maps each thing in a schema to its normalised description;
// two dialects agree where the descriptions are equal.
type schemaFacts map[factKey]string

func TestSchemaParity(t *testing.T) {
	facts := map[string]schemaFacts{
		"sqlite": sqliteSchema(t, migratedDB(t, "sqlite")),
	}
	facts["postgres"] = postgresSchema(t, migratedDB(t, "postgres"))

	for _, side := range []string{"sqlite", "postgres"} {
		// An introspection query that silently finds nothing would make
		// the two sides agree on nothing at all.
		for _, kind := range []string{"column ", "primary key", "index ", "unique ", "foreign key "} {
			if !facts[side].has(kind) {
				t.Fatalf("%s: introspection found no %q at all; the query reading them is broken", side, kind)
			}
		}
	}
	for side, list := range schemaByDesign {
		other := "postgres"
		if side == "postgres" {
			other = "sqlite"
		}
		for _, e := range list {
			if _, ok := facts[side][e.key]; !ok {
				t.Errorf("%s is listed as %s only (%s), but %s has no such thing: take it off schemaByDesign", e.key, side, e.reason, side)
			}
			if _, ok := facts[other][e.key]; ok {
				t.Errorf("%s is listed as %s only (%s), but %s has it too: take it off schemaByDesign so that it is compared", e.key, side, e.reason, other)
			}
			facts[side].drop(e.key)
		}
	}
	if d := diffSchemas(facts["sqlite"], facts["postgres"]); len(d) > 0 {
		t.Errorf("the sqlite and postgres migrations build different schemas:\n\t%s\n"+
			"Fix it with a new migration pair in store/migrations (never edit one that has landed), "+
			"or, if the difference is by design, list it in schemaByDesign with the reason.",
			strings.Join(d, "\n\t"))
	}
}

func (f schemaFacts) has(prefix string) bool {
	for k := range f {
		if strings.HasPrefix(k.item, prefix) {
			return true
		}
	}
	return false
}

// drop removes k, and when k is a table everything of the table.
func (f schemaFacts) drop(k factKey) {
	delete(f, k)
	if k.item == "" {
		for o := range f {
			if o.table == k.table {
				delete(f, o)
			}
		}
	}
}

// diffSchemas describes every difference between a (sqlite) and b
// (postgres), one line each, ordered by table.
func diffSchemas(a, b schemaFacts) []string {
	keys := map[factKey]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]factKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].table != sorted[j].table {
			return sorted[i].table < sorted[j].table
		}
		return sorted[i].item < sorted[j].item
	})
	var out []string
	onlyTable := map[string]bool{} // tables that one side lacks: reported once
	for _, k := range sorted {
		if onlyTable[k.table] {
			continue
		}
		va, inA := a[k]
		vb, inB := b[k]
		switch {
		case inA && !inB:
			out = append(out, fmt.Sprintf("%s: only on sqlite: %s", k, va))
		case inB && !inA:
			out = append(out, fmt.Sprintf("%s: only on postgres: %s", k, vb))
		case va != vb:
			out = append(out, fmt.Sprintf("%s: sqlite has %s; postgres has %s", k, va, vb))
		}
		if k.item == "" && inA != inB {
			onlyTable[k.table] = true
		}
	}
	return out
}

// migratedDB opens a fresh database on backend, lets store.Open migrate it,
// and returns a plain connection to it for introspection.
func migratedDB(t *testing.T, backend string) *sql.DB {
	t.Helper()
	url := storetest.URL(t, backend)
	st, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatalf("open %s store: %v", backend, err)
	}
	st.Close()
	var db *sql.DB
	switch backend {
	case "sqlite":
		db, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(url, "sqlite:"))
	case "postgres":
		db, err = sql.Open("pgx", url)
	}
	if err != nil {
		t.Fatalf("open %s: %v", backend, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eachRow runs q and calls fn for every row, failing the test on any error.
func eachRow(t *testing.T, db *sql.DB, q string, args []any, fn func(*sql.Rows) error) {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func columnFact(class string, notNull bool, def string, generated bool) string {
	s := class + " NULL"
	if notNull {
		s = class + " NOT NULL"
	}
	if def != "" {
		s += " DEFAULT " + normSQL(def)
	}
	if generated {
		s += " GENERATED"
	}
	return s
}

func indexFact(unique bool, method string, keys []string, where string) string {
	s := method + " (" + strings.Join(keys, ", ") + ")"
	if unique {
		s = "unique " + s
	}
	if where != "" {
		s += " WHERE " + normSQL(where)
	}
	return s
}

func fkFact(refTable string, refCols []string, onUpdate, onDelete string) string {
	return fmt.Sprintf("references %s (%s) on update %s on delete %s", refTable, strings.Join(refCols, ", "), onUpdate, onDelete)
}

// sqliteClass maps a declared SQLite column type to a type class, after
// SQLite's own affinity rules (sqlite.org/datatype3.html §3.1), except that
// a BOOL type is a boolean rather than NUMERIC.
func sqliteClass(decl string) string {
	d := strings.ToUpper(decl)
	switch {
	case strings.Contains(d, "BOOL"):
		return "boolean"
	case strings.Contains(d, "INT"):
		return "integer"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case strings.Contains(d, "BLOB"), d == "":
		return "blob"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "real"
	}
	return "numeric (" + decl + ")"
}

// postgresClass maps information_schema's data_type to a type class; a type
// with no counterpart on SQLite is kept as it is, so it shows as a
// difference.
func postgresClass(dataType string) string {
	switch dataType {
	case "smallint", "integer", "bigint":
		return "integer"
	case "text", "character varying", "character":
		return "text"
	case "bytea":
		return "blob"
	case "real", "double precision":
		return "real"
	case "boolean":
		return "boolean"
	}
	return dataType
}

func sqliteSchema(t *testing.T, db *sql.DB) schemaFacts {
	t.Helper()
	f := schemaFacts{}
	var tables []string
	indexSQL := map[string]string{}
	eachRow(t, db, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema ORDER BY name`, nil, func(r *sql.Rows) error {
		var typ, name, table, text string
		if err := r.Scan(&typ, &name, &table, &text); err != nil {
			return err
		}
		// SQLite's own objects: sqlite_sequence, sqlite_stat*, and the
		// autoindexes of UNIQUE and PRIMARY KEY constraints, which
		// pragma_index_list reads below.
		if strings.HasPrefix(name, "sqlite_") {
			return nil
		}
		switch typ {
		case "table":
			tables = append(tables, name)
			f[factKey{name, ""}] = "table"
			if strings.HasPrefix(strings.ToUpper(text), "CREATE VIRTUAL TABLE") {
				f[factKey{name, ""}] = "virtual table"
			}
		case "view":
			f[factKey{name, ""}] = "view"
		case "index":
			indexSQL[name] = text
		case "trigger":
			f[factKey{table, "trigger " + name}] = "trigger"
		}
		return nil
	})
	primaryKey := func(table string) []string {
		pk := map[int]string{}
		eachRow(t, db, `SELECT name, pk FROM pragma_table_xinfo(?) WHERE pk > 0`, []any{table}, func(r *sql.Rows) error {
			var name string
			var n int
			err := r.Scan(&name, &n)
			pk[n] = name
			return err
		})
		cols := make([]string, len(pk))
		for n, name := range pk {
			cols[n-1] = name
		}
		return cols
	}
	for _, table := range tables {
		eachRow(t, db, `SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)`, []any{table}, func(r *sql.Rows) error {
			var name, decl string
			var def sql.NullString
			var notNull bool
			var pk, hidden int
			if err := r.Scan(&name, &decl, &notNull, &def, &pk, &hidden); err != nil {
				return err
			}
			if hidden == 1 { // a virtual table's hidden column
				return nil
			}
			// SQLite lets a PRIMARY KEY column other than an INTEGER
			// PRIMARY KEY hold NULL unless it also says NOT NULL (a
			// compatibility quirk, sqlite.org/lang_createtable.html); the
			// store never writes a NULL key, so such a column compares as
			// NOT NULL, as it is on PostgreSQL.
			f[factKey{table, "column " + name}] = columnFact(sqliteClass(decl), notNull || pk > 0, def.String, hidden == 2 || hidden == 3)
			return nil
		})
		if pk := primaryKey(table); len(pk) > 0 {
			f[factKey{table, "primary key"}] = "(" + strings.Join(pk, ", ") + ")"
		}

		type index struct {
			name, origin    string
			unique, partial bool
		}
		var indexes []index
		eachRow(t, db, `SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, []any{table}, func(r *sql.Rows) error {
			var ix index
			err := r.Scan(&ix.name, &ix.unique, &ix.origin, &ix.partial)
			indexes = append(indexes, ix)
			return err
		})
		for _, ix := range indexes {
			if ix.origin == "pk" {
				continue // the primary key, above
			}
			var keys []string
			exprs, where := sqliteIndexParts(indexSQL[ix.name])
			eachRow(t, db, `SELECT seqno, cid, COALESCE(name, ''), "desc" FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno`, []any{ix.name}, func(r *sql.Rows) error {
				var seq, cid int
				var name string
				var desc bool
				if err := r.Scan(&seq, &cid, &name, &desc); err != nil {
					return err
				}
				if cid == -2 { // an expression
					if seq >= len(exprs) {
						return fmt.Errorf("index %s: expression %d not found in %q", ix.name, seq, indexSQL[ix.name])
					}
					name = normSQL(exprs[seq])
				}
				if desc {
					name += " desc"
				}
				keys = append(keys, name)
				return nil
			})
			if ix.origin == "u" {
				f[factKey{table, "unique (" + strings.Join(keys, ", ") + ")"}] = "constraint"
				continue
			}
			if !ix.partial {
				where = ""
			}
			f[factKey{table, "index " + ix.name}] = indexFact(ix.unique, "btree", keys, where)
		}

		type fk struct {
			table, onUpdate, onDelete string
			from, to                  []string
		}
		fks := map[int]*fk{}
		eachRow(t, db, `SELECT id, "table", "from", COALESCE("to", ''), on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, []any{table}, func(r *sql.Rows) error {
			var id int
			var ref, from, to, onUpdate, onDelete string
			if err := r.Scan(&id, &ref, &from, &to, &onUpdate, &onDelete); err != nil {
				return err
			}
			if fks[id] == nil {
				fks[id] = &fk{table: ref, onUpdate: strings.ToLower(onUpdate), onDelete: strings.ToLower(onDelete)}
			}
			fks[id].from = append(fks[id].from, from)
			fks[id].to = append(fks[id].to, to)
			return nil
		})
		for _, k := range fks {
			if k.to[0] == "" { // REFERENCES t with no columns: t's primary key
				k.to = primaryKey(k.table)
			}
			f[factKey{table, "foreign key (" + strings.Join(k.from, ", ") + ")"}] = fkFact(k.table, k.to, k.onUpdate, k.onDelete)
		}
	}
	return f
}

// sqliteIndexParts reads a CREATE INDEX statement's key items (as written)
// and its WHERE predicate, which the pragmas do not give.
func sqliteIndexParts(stmt string) (items []string, where string) {
	ts := sqlTokens(stmt)
	start := -1
	for i := 0; i+1 < len(ts); i++ {
		if ts[i].is("on") {
			for j := i + 1; j < len(ts); j++ {
				if ts[j].is("(") {
					start = j
					break
				}
			}
			break
		}
	}
	if start < 0 {
		return nil, ""
	}
	end := sqlClosing(ts, start)
	var item []sqlTok
	depth := 0
	for _, tk := range ts[start+1 : end] {
		switch {
		case tk.is("("):
			depth++
		case tk.is(")"):
			depth--
		case tk.is(",") && depth == 0:
			items = append(items, renderSQL(trimIndexOrder(item)))
			item = nil
			continue
		}
		item = append(item, tk)
	}
	items = append(items, renderSQL(trimIndexOrder(item)))
	if end+1 < len(ts) && ts[end+1].is("where") {
		where = renderSQL(ts[end+2:])
	}
	return items, where
}

// trimIndexOrder drops an index item's ASC/DESC and COLLATE, which the pragmas
// report (or the test leaves out).
func trimIndexOrder(ts []sqlTok) []sqlTok {
	for len(ts) > 0 && (ts[len(ts)-1].is("asc") || ts[len(ts)-1].is("desc")) {
		ts = ts[:len(ts)-1]
	}
	if n := len(ts); n >= 2 && ts[n-2].is("collate") {
		ts = ts[:n-2]
	}
	return ts
}

func postgresSchema(t *testing.T, db *sql.DB) schemaFacts {
	t.Helper()
	f := schemaFacts{}
	eachRow(t, db, `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = current_schema()`, nil, func(r *sql.Rows) error {
		var name, typ string
		if err := r.Scan(&name, &typ); err != nil {
			return err
		}
		switch typ {
		case "BASE TABLE":
			typ = "table"
		case "VIEW":
			typ = "view"
		}
		f[factKey{name, ""}] = strings.ToLower(typ)
		return nil
	})
	eachRow(t, db, `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'NO', COALESCE(c.column_default, ''), c.is_generated <> 'NEVER'
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`, nil, func(r *sql.Rows) error {
		var table, name, typ, def string
		var notNull, generated bool
		if err := r.Scan(&table, &name, &typ, &notNull, &def, &generated); err != nil {
			return err
		}
		f[factKey{table, "column " + name}] = columnFact(postgresClass(typ), notNull, def, generated)
		return nil
	})

	// One row per key column of every index, in order; contype tells the
	// indexes of UNIQUE and PRIMARY KEY constraints from the others.
	type index struct {
		table, method, constraint, where string
		unique, primary                  bool
		keys                             []string
	}
	indexes := map[string]*index{}
	var names []string
	eachRow(t, db, `SELECT ct.relname, ci.relname, am.amname, i.indisunique, i.indisprimary, COALESCE(con.contype, ''),
			COALESCE(pg_get_expr(i.indpred, i.indrelid, true), ''),
			pg_get_indexdef(i.indexrelid, k, true), (i.indoption[k - 1] & 1) = 1
		FROM pg_index i
		JOIN pg_class ci ON ci.oid = i.indexrelid
		JOIN pg_class ct ON ct.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = ct.relnamespace
		JOIN pg_am am ON am.oid = ci.relam
		LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
		CROSS JOIN LATERAL generate_series(1, i.indnkeyatts) k
		WHERE n.nspname = current_schema()
		ORDER BY ci.relname, k`, nil, func(r *sql.Rows) error {
		var ix index
		var name, key string
		var desc bool
		if err := r.Scan(&ix.table, &name, &ix.method, &ix.unique, &ix.primary, &ix.constraint, &ix.where, &key, &desc); err != nil {
			return err
		}
		if indexes[name] == nil {
			indexes[name] = &ix
			names = append(names, name)
		}
		key = normSQL(key)
		if desc {
			key += " desc"
		}
		indexes[name].keys = append(indexes[name].keys, key)
		return nil
	})
	for _, name := range names {
		ix := indexes[name]
		switch {
		case ix.primary:
			f[factKey{ix.table, "primary key"}] = "(" + strings.Join(ix.keys, ", ") + ")"
		case ix.constraint == "u":
			f[factKey{ix.table, "unique (" + strings.Join(ix.keys, ", ") + ")"}] = "constraint"
		default:
			f[factKey{ix.table, "index " + name}] = indexFact(ix.unique, ix.method, ix.keys, ix.where)
		}
	}

	type fk struct {
		table, ref, onUpdate, onDelete string
		from, to                       []string
	}
	fks := map[string]*fk{}
	var fkNames []string
	actions := map[string]string{"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
	eachRow(t, db, `SELECT c.conname, ct.relname, rt.relname, c.confupdtype, c.confdeltype, a.attname, ra.attname
		FROM pg_constraint c
		JOIN pg_class ct ON ct.oid = c.conrelid
		JOIN pg_class rt ON rt.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = ct.relnamespace
		CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, refcol, pos)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
		JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.refcol
		WHERE c.contype = 'f' AND n.nspname = current_schema()
		ORDER BY c.conname, k.pos`, nil, func(r *sql.Rows) error {
		var name, table, ref, onUpdate, onDelete, from, to string
		if err := r.Scan(&name, &table, &ref, &onUpdate, &onDelete, &from, &to); err != nil {
			return err
		}
		if fks[name] == nil {
			fks[name] = &fk{table: table, ref: ref, onUpdate: actions[onUpdate], onDelete: actions[onDelete]}
			fkNames = append(fkNames, name)
		}
		fks[name].from = append(fks[name].from, from)
		fks[name].to = append(fks[name].to, to)
		return nil
	})
	for _, name := range fkNames {
		k := fks[name]
		f[factKey{k.table, "foreign key (" + strings.Join(k.from, ", ") + ")"}] = fkFact(k.ref, k.to, k.onUpdate, k.onDelete)
	}

	eachRow(t, db, `SELECT c.relname, tg.tgname FROM pg_trigger tg
		JOIN pg_class c ON c.oid = tg.tgrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT tg.tgisinternal AND n.nspname = current_schema()`, nil, func(r *sql.Rows) error {
		var table, name string
		if err := r.Scan(&table, &name); err != nil {
			return err
		}
		f[factKey{table, "trigger " + name}] = "trigger"
		return nil
	})
	return f
}

// Normalising SQL expressions (index keys, partial-index predicates,
// defaults), so that what SQLite keeps as written and what PostgreSQL
// prints back (pg_get_expr, pg_get_indexdef, column_default) compare
// equal when they mean the same: case and whitespace do not matter,
// PostgreSQL's casts (''::text) are dropped, != is <>, "= ANY (ARRAY[...])"
// is IN (...), and parentheses that change nothing are removed.

type sqlTok struct {
	kind byte // 'w' word or identifier, 's' string literal, 'n' number, 'o' operator or punctuation
	s    string
}

func (t sqlTok) is(s string) bool { return t.kind != 's' && t.s == s }

func sqlTokens(s string) []sqlTok {
	var out []sqlTok
	isWord := func(c byte) bool {
		return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "--"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '\'':
			j := i + 1
			for j < len(s) && (s[j] != '\'' || j+1 < len(s) && s[j+1] == '\'') {
				if s[j] == '\'' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			out = append(out, sqlTok{'s', s[i:j]})
			i = j
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				j = len(s) - i - 1
			}
			out = append(out, sqlTok{'w', strings.ToLower(s[i+1 : i+1+j])})
			i += j + 2
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			out = append(out, sqlTok{'n', s[i:j]})
			i = j
		case isWord(c):
			j := i
			for j < len(s) && isWord(s[j]) {
				j++
			}
			out = append(out, sqlTok{'w', strings.ToLower(s[i:j])})
			i = j
		default:
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "::", "<>", "!=", "<=", ">=", "||", "==":
					out = append(out, sqlTok{'o', two})
					i += 2
					continue
				}
			}
			// A minus sign before a number, where no operand precedes it,
			// is part of the number.
			if c == '-' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' &&
				(len(out) == 0 || out[len(out)-1].kind == 'o' && !out[len(out)-1].is(")")) {
				j := i + 1
				for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
					j++
				}
				out = append(out, sqlTok{'n', s[i:j]})
				i = j
				continue
			}
			out = append(out, sqlTok{'o', string(c)})
			i++
		}
	}
	return out
}

// sqlClosing returns the index of the parenthesis that closes ts[open].
func sqlClosing(ts []sqlTok, open int) int {
	depth := 0
	for i := open; i < len(ts); i++ {
		switch {
		case ts[i].is("("):
			depth++
		case ts[i].is(")"):
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(ts) - 1
}

func normSQL(s string) string { return renderSQL(simplifySQL(sqlTokens(s))) }

var (
	// castTypeWords are the words that go on from a type's first word.
	castTypeWords = map[string]map[string]bool{
		"character": {"varying": true},
		"double":    {"precision": true},
		"bit":       {"varying": true},
		"timestamp": {"with": true, "without": true, "time": true, "zone": true},
		"time":      {"with": true, "without": true, "time": true, "zone": true},
	}
	castNumericTypes = map[string]bool{"smallint": true, "integer": true, "bigint": true, "numeric": true, "real": true, "double precision": true}
)

func simplifySQL(ts []sqlTok) []sqlTok {
	// Casts: x::type, x::character varying(20), x::text[].
	var out []sqlTok
	for i := 0; i < len(ts); i++ {
		if !ts[i].is("::") {
			out = append(out, ts[i])
			continue
		}
		j := i + 1
		typ := ""
		if j < len(ts) && ts[j].kind == 'w' {
			typ = ts[j].s
			more := castTypeWords[typ]
			for j++; j < len(ts) && ts[j].kind == 'w' && more[ts[j].s]; j++ {
				typ += " " + ts[j].s
			}
		}
		if j < len(ts) && ts[j].is("(") {
			k := j + 1
			for k < len(ts) && (ts[k].kind == 'n' || ts[k].is(",")) {
				k++
			}
			if k < len(ts) && ts[k].is(")") {
				j = k + 1
			}
		}
		for j+1 < len(ts) && ts[j].is("[") && ts[j+1].is("]") {
			j += 2
		}
		// PostgreSQL prints a negative default as '-1'::integer.
		if n := len(out); castNumericTypes[typ] && n > 0 && out[n-1].kind == 's' {
			if v := strings.Trim(out[n-1].s, "'"); v != "" {
				if _, err := strconv.ParseFloat(v, 64); err == nil {
					out[n-1] = sqlTok{'n', v}
				}
			}
		}
		i = j - 1
	}
	ts = out

	// Spellings: != is <>, == is =; x = ANY (ARRAY[a, b]) is x IN (a, b).
	out = nil
	for i := 0; i < len(ts); i++ {
		switch {
		case ts[i].is("!="):
			out = append(out, sqlTok{'o', "<>"})
			continue
		case ts[i].is("=="):
			out = append(out, sqlTok{'o', "="})
			continue
		}
		if (ts[i].is("=") || ts[i].is("<>")) && i+4 < len(ts) &&
			(ts[i+1].is("any") && ts[i].is("=") || ts[i+1].is("all") && ts[i].is("<>")) &&
			ts[i+2].is("(") && ts[i+3].is("array") && ts[i+4].is("[") {
			end := sqlClosing(ts, i+2)
			if end-1 > i+4 && ts[end-1].is("]") {
				if ts[i].is("<>") {
					out = append(out, sqlTok{'w', "not"})
				}
				out = append(out, sqlTok{'w', "in"}, sqlTok{'o', "("})
				out = append(out, ts[i+5:end-1]...)
				out = append(out, sqlTok{'o', ")"})
				i = end
				continue
			}
		}
		out = append(out, ts[i])
	}
	ts = out

	// Parentheses that change nothing, until none is left.
	for changed := true; changed; {
		changed = false
		for i := range ts {
			if !ts[i].is("(") || !sqlGrouping(ts, i) {
				continue
			}
			end := sqlClosing(ts, i)
			inner := sqlPrecedence(ts[i+1 : end])
			var outer int
			if i > 0 {
				outer = max(outer, sqlOpLevel(ts[i-1]))
			}
			if end+1 < len(ts) {
				outer = max(outer, sqlOpLevel(ts[end+1]))
			}
			if inner > outer || inner == outer && (inner == sqlLevelOr || inner == sqlLevelAnd) {
				ts = append(append(append([]sqlTok{}, ts[:i]...), ts[i+1:end]...), ts[end+1:]...)
				changed = true
				break
			}
		}
	}
	return ts
}

// Operator precedence, loosest first; boundaries (start, end, "(", ",",
// WHERE, THEN...) are 0 and an operand is sqlLevelAtom.
const (
	sqlLevelOr = 1 + iota
	sqlLevelAnd
	sqlLevelNot
	sqlLevelCompare
	sqlLevelAdd
	sqlLevelMul
	sqlLevelConcat
	sqlLevelAtom
)

// sqlOpLevel is the precedence of t as an operator, 0 if it is a boundary or
// not an operator.
func sqlOpLevel(t sqlTok) int {
	if t.kind == 's' || t.kind == 'n' {
		return 0
	}
	switch t.s {
	case "or":
		return sqlLevelOr
	case "and":
		return sqlLevelAnd
	case "not":
		return sqlLevelNot
	case "=", "<>", "<", ">", "<=", ">=", "is", "in", "like", "ilike", "glob", "between", "isnull", "notnull", "escape":
		return sqlLevelCompare
	case "+", "-":
		return sqlLevelAdd
	case "*", "/", "%":
		return sqlLevelMul
	case "||", "collate":
		return sqlLevelConcat
	}
	return 0
}

// sqlGrouping reports whether the parenthesis at ts[i] groups an expression,
// rather than opening a call's arguments or an IN list.
func sqlGrouping(ts []sqlTok, i int) bool {
	if i == 0 {
		return true
	}
	p := ts[i-1]
	switch {
	case p.kind == 'o':
		return !p.is(")") && !p.is("]")
	case p.kind == 'w':
		switch p.s {
		case "and", "or", "not", "where", "when", "then", "else", "case":
			return true
		}
	}
	return false
}

// sqlPrecedence is the loosest operator at the top level of ts.
func sqlPrecedence(ts []sqlTok) int {
	level, depth := sqlLevelAtom, 0
	for _, t := range ts {
		switch {
		case t.is("("), t.is("["):
			depth++
		case t.is(")"), t.is("]"):
			depth--
		case depth == 0:
			if l := sqlOpLevel(t); l > 0 {
				level = min(level, l)
			}
		}
	}
	return level
}

func renderSQL(ts []sqlTok) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			p := ts[i-1]
			space := true
			switch {
			case p.is("("), p.is("["), p.is("."), t.is("."):
				space = false
			case t.is(")"), t.is("]"), t.is(","):
				space = false
			case (t.is("(") || t.is("[")) && p.kind == 'w' && sqlOpLevel(p) == 0 && !sqlGrouping(ts, i):
				space = false // a call
			}
			if space {
				b.WriteByte(' ')
			}
		}
		b.WriteString(t.s)
	}
	return b.String()
}

func TestSchemaNormalise(t *testing.T) {
	same := []struct{ postgres, sqlite string }{
		// What pg_get_expr prints for conversations_queue's predicate.
		{`COALESCE(assignee_id, ''::text) = ''::text AND status <> 'resolved'::text AND held = 0`,
			`COALESCE(assignee_id, '') = '' AND status <> 'resolved' AND held = 0`},
		{`(status <> 'resolved'::text)`, `status != 'resolved'`},
		{`((a = 1) AND (b = 2)) AND (c IS NOT NULL)`, `a = 1 and b = 2 AND c IS NOT NULL`},
		{`(a OR b) OR c`, `a OR b OR c`},
		{`NOT (a = 1)`, `NOT a = 1`},
		{`status = ANY (ARRAY['open'::text, 'pending'::text])`, `status IN ('open', 'pending')`},
		{`status <> ALL (ARRAY['open'::text])`, `status NOT IN ('open')`},
		{`lower((email)::text)`, `LOWER(email)`},
		{`(name)::character varying(20)`, `"Name"`},
		{`'-1'::integer`, `-1`},
		{`''::text`, `''`},
		{`'it''s'::text`, `'it''s'`},
		{`x = 0 -- a comment`, `x=0`},
	}
	for _, c := range same {
		if p, s := normSQL(c.postgres), normSQL(c.sqlite); p != s {
			t.Errorf("%q -> %q\n%q -> %q\nwant them equal", c.postgres, p, c.sqlite, s)
		}
	}
	differ := [][2]string{
		{`(a OR b) AND c`, `a OR b AND c`},
		{`NOT (a AND b)`, `NOT a AND b`},
		{`(a + b) * c`, `a + b * c`},
		{`a = 'x'`, `a = 'X'`},
	}
	for _, c := range differ {
		if a, b := normSQL(c[0]), normSQL(c[1]); a == b {
			t.Errorf("%q and %q both normalise to %q; want them different", c[0], c[1], a)
		}
	}
	if got, want := normSQL(`COALESCE(assignee_id, ''::text) = ''::text AND (held = 0)`), `coalesce(assignee_id, '') = '' and held = 0`; got != want {
		t.Errorf("normSQL = %q, want %q", got, want)
	}
	items, where := sqliteIndexParts("CREATE UNIQUE INDEX x ON t (a DESC, lower(b) COLLATE nocase, (c + 1))\n    WHERE a IS NOT NULL -- note")
	if got := strings.Join(items, " | "); got != "a | lower(b) | (c + 1)" {
		t.Errorf("items = %q", got)
	}
	if normSQL(where) != "a is not null" {
		t.Errorf("where = %q", where)
	}
}
