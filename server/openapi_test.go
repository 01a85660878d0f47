package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
	"github.com/switchboard-inbox/switchboard/realtime"
	"github.com/switchboard-inbox/switchboard/server"
)

// The agent API's OpenAPI document (server/openapi.json) is a contract
// scripts and generated clients rely on: these tests hold it to the routes
// the server registers and to the answers the server really gives.

// oaURL names the document for the schema compiler; nothing is fetched.
const oaURL = "https://switchboard.invalid/openapi.json"

// oaDoc is the parsed document with a compiler that holds it whole, so
// that a schema is compiled by JSON pointer and its $refs resolve inside.
type oaDoc struct {
	raw      []byte
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		t.Fatal("openapi.json is not a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Formats are annotations in 2020-12 unless asserted: a time that is
	// not RFC 3339 must fail.
	c.AssertFormat()
	if err := c.AddResource(oaURL, doc); err != nil {
		t.Fatalf("openapi.json as a schema resource: %v", err)
	}
	return &oaDoc{raw: raw, doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// ptr escapes a JSON pointer token.
func ptr(tok string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}

// at returns the value at a JSON pointer into the document, or nil.
func (d *oaDoc) at(p string) any {
	var v any = d.doc
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		switch x := v.(type) {
		case map[string]any:
			v = x[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// deref follows an object's $ref into the document (response and
// parameter objects may be references); it returns the object and its
// pointer.
func (d *oaDoc) deref(p string) (map[string]any, string) {
	for range 10 {
		m, _ := d.at(p).(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, p
		}
		p = strings.TrimPrefix(ref, "#")
	}
	return nil, p
}

// schema compiles the schema at a JSON pointer, once.
func (d *oaDoc) schema(t *testing.T, p string) *jsonschema.Schema {
	t.Helper()
	if s, ok := d.schemas[p]; ok {
		return s
	}
	s, err := d.compiler.Compile(oaURL + "#" + p)
	if err != nil {
		t.Fatalf("compile the schema at %s: %v", p, err)
	}
	d.schemas[p] = s
	return s
}

// operation returns the pointer to a documented operation, or "".
func (d *oaDoc) operation(method, pattern string) string {
	p := "/paths/" + ptr(pattern) + "/" + strings.ToLower(method)
	if _, ok := d.at(p).(map[string]any); !ok {
		return ""
	}
	return p
}

// response returns the response object an operation declares for status
// (the exact code, then its range, then default) and its pointer.
func (d *oaDoc) response(method, pattern string, status int) (map[string]any, string) {
	op := d.operation(method, pattern)
	for _, key := range []string{strconv.Itoa(status), fmt.Sprintf("%dXX", status/100), "default"} {
		if r, p := d.deref(op + "/responses/" + key); r != nil {
			return r, p
		}
	}
	return nil, ""
}

// mediaKey picks the content key of a content map that covers contentType.
func mediaKey(content map[string]any, contentType string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	for _, k := range []string{mt, strings.Split(mt, "/")[0] + "/*", "*/*"} {
		if _, ok := content[k]; ok {
			return k
		}
	}
	return ""
}

// instance decodes JSON as the validator wants it (numbers kept exact).
func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not JSON: %v: %.200q", err, b)
	}
	return v
}

// registeredRoutes reads the agent API's patterns from the files that
// register them: routeAPI's h("METHOD /api/v1/...") lines in api.go and
// the realtime socket's mux.Handle in server.go. Reading the source keeps
// the server free of a route list kept only for this test.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	re := regexp.MustCompile(`(?:\bh|mux\.Handle(?:Func)?)\("((?:GET|POST|PUT|PATCH|DELETE) /api/v1/[^"]*)"`)
	for _, f := range []string{"api.go", "server.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	if !slices.Contains(out, "GET /api/v1/realtime") || !slices.Contains(out, "GET /api/v1/conversations") || len(out) < 20 {
		t.Fatalf("read %d routes from api.go and server.go (%v): has the registration changed shape?", len(out), out)
	}
	return out
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// documentedRoutes lists the document's operations as "METHOD /path".
func (d *oaDoc) documentedRoutes(t *testing.T) []string {
	t.Helper()
	paths, ok := d.doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("no paths")
	}
	var out []string
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if slices.Contains(httpMethods, m) {
				out = append(out, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	d := loadOpenAPI(t)
	if v, _ := d.doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	if v := d.doc["jsonSchemaDialect"]; v != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("jsonSchemaDialect = %v, want JSON Schema 2020-12", v)
	}
	registered, documented := registeredRoutes(t), d.documentedRoutes(t)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is registered but not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(registered, r) {
			t.Errorf("%s is in openapi.json but not registered", r)
		}
	}

	for _, id := range []string{"bearerAuth", "cookieSession", "csrfToken"} {
		if d.at("/components/securitySchemes/"+id) == nil {
			t.Errorf("security scheme %s is missing", id)
		}
	}
	if d.at("/components/securitySchemes/cookieSession/name") != "sb_session" || d.at("/components/securitySchemes/csrfToken/name") != "X-CSRF-Token" {
		t.Error("the session is the cookie sb_session, with X-CSRF-Token on state-changing requests")
	}

	opIDs := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for _, r := range documented {
		method, pattern, _ := strings.Cut(r, " ")
		op := d.operation(method, pattern)
		o := d.at(op).(map[string]any)
		id, _ := o["operationId"].(string)
		if id == "" || opIDs[id] != "" {
			t.Errorf("%s: operationId %q missing or also used by %s", r, id, opIDs[id])
		}
		opIDs[id] = r

		// Every operation says who may call it; one that changes state
		// with the session cookie also needs the CSRF header.
		sec, _ := o["security"].([]any)
		var cookieNeedsCSRF, bearer bool
		for _, req := range sec {
			m := req.(map[string]any)
			if _, ok := m["bearerAuth"]; ok {
				bearer = true
			}
			if _, ok := m["cookieSession"]; ok {
				_, cookieNeedsCSRF = m["csrfToken"]
			}
		}
		if !bearer || len(sec) != 2 || cookieNeedsCSRF != (method != "GET") {
			t.Errorf("%s: security %v, want the bearer token or the session cookie (with X-CSRF-Token when not a GET)", r, sec)
		}

		// Path templates and path parameters agree.
		var declared []string
		params, _ := o["parameters"].([]any)
		for i := range params {
			pm, pp := d.deref(fmt.Sprintf("%s/parameters/%d", op, i))
			if pm == nil {
				t.Errorf("%s: parameter %s does not resolve", r, pp)
				continue
			}
			if pm["in"] == "path" {
				declared = append(declared, pm["name"].(string))
				if pm["required"] != true {
					t.Errorf("%s: path parameter %v must be required", r, pm["name"])
				}
			}
			if _, ok := pm["schema"]; ok {
				d.schema(t, pp+"/schema")
			}
		}
		var inPath []string
		for _, m := range param.FindAllStringSubmatch(pattern, -1) {
			inPath = append(inPath, m[1])
		}
		slices.Sort(declared)
		slices.Sort(inPath)
		if !slices.Equal(declared, inPath) {
			t.Errorf("%s: path parameters %v declared, %v in the path", r, declared, inPath)
		}

		// Every response resolves; JSON ones compile (which also checks
		// each against the 2020-12 meta-schema); errors have the error
		// shape; each operation answers success somehow.
		responses, _ := o["responses"].(map[string]any)
		success := false
		for code := range responses {
			resp, rp := d.deref(op + "/responses/" + ptr(code))
			if resp == nil {
				t.Errorf("%s: response %s does not resolve", r, code)
				continue
			}
			n, _ := strconv.Atoi(code)
			success = success || (n >= 200 && n < 300) || n == 101
			content, _ := resp["content"].(map[string]any)
			if _, ok := content["application/json"]; ok {
				d.schema(t, rp+"/content/application~1json/schema")
			}
			if _, isJSON := content["application/json"]; isJSON && (n >= 400 || code == "default") {
				ref, _ := d.at(rp + "/content/application~1json/schema/$ref").(string)
				if ref != "#/components/schemas/Error" && ref != "#/components/schemas/PolicyError" {
					t.Errorf("%s: response %s is not the error shape: %v", r, code, ref)
				}
			}
			headers, _ := resp["headers"].(map[string]any)
			for h := range headers {
				d.schema(t, rp+"/headers/"+ptr(h)+"/schema")
			}
		}
		if !success {
			t.Errorf("%s: no success response", r)
		}
		if d.at(op+"/responses/default") == nil {
			t.Errorf("%s: no default (error) response", r)
		}
		if rb, _ := d.at(op + "/requestBody/content").(map[string]any); rb != nil {
			for mt := range rb {
				if _, ok := d.at(op + "/requestBody/content/" + ptr(mt) + "/schema").(map[string]any); ok {
					d.schema(t, op+"/requestBody/content/"+ptr(mt)+"/schema")
				}
			}
		}
	}
	// The answers' objects are closed: a renamed or added field fails
	// validation instead of passing unnoticed.
	for _, name := range []string{"Conversation", "ConversationDetail", "Message", "Attachment", "Customer", "Agent", "Error", "PolicyError", "ComposeDecision", "Site", "NewSite", "RoutingConfig", "MessageTemplate"} {
		if d.at("/components/schemas/"+name+"/additionalProperties") != false {
			t.Errorf("schema %s is not closed (additionalProperties: false)", name)
		}
	}
}

// oaAnswer is one HTTP answer, kept raw for validation.
type oaAnswer struct {
	status int
	header http.Header
	body   []byte
}

// oaCall checks the live server against the document: each request body
// the test sends successfully is valid for the operation, and each answer
// (status, Content-Type, declared headers, JSON body) is one the
// operation declares. covered records what was exercised.
type oaCall struct {
	t       *testing.T
	d       *oaDoc
	base    string
	covered map[string]bool
}

// send makes a request: a []byte body is sent as it is, anything else
// encoded as JSON; a body is application/json unless contentType says.
func (c *oaCall) send(method, path, token, contentType string, body any) oaAnswer {
	c.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	if body != nil && contentType == "" {
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return oaAnswer{resp.StatusCode, resp.Header, rb}
}

// do sends a request to pattern's operation at path and checks the answer
// against the document; it fails unless the status is want.
func (c *oaCall) do(method, pattern, path, token string, body any, want int) oaAnswer {
	c.t.Helper()
	return c.doType(method, pattern, path, token, "", body, want)
}

func (c *oaCall) doType(method, pattern, path, token, contentType string, body any, want int) oaAnswer {
	c.t.Helper()
	op := c.d.operation(method, pattern)
	if op == "" {
		c.t.Fatalf("%s %s is not documented", method, pattern)
	}
	if body != nil && want < 300 {
		if _, raw := body.([]byte); !raw {
			b, _ := json.Marshal(body)
			s := c.d.schema(c.t, op+"/requestBody/content/application~1json/schema")
			if err := s.Validate(instance(c.t, b)); err != nil {
				c.t.Errorf("%s %s: the request body the server accepts is invalid for the document: %s\n%v", method, path, b, err)
			}
		}
	}
	a := c.send(method, path, token, contentType, body)
	if a.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %.500s", method, path, a.status, want, a.body)
	}
	c.check(method, pattern, path, a)
	if want < 400 {
		c.covered[method+" "+pattern] = true
	}
	return a
}

// check validates an answer against what the operation declares.
func (c *oaCall) check(method, pattern, path string, a oaAnswer) {
	c.t.Helper()
	resp, rp := c.d.response(method, pattern, a.status)
	if resp == nil {
		c.t.Errorf("%s %s: status %d is not documented", method, path, a.status)
		return
	}
	headers, _ := resp["headers"].(map[string]any)
	for name := range headers {
		h, _ := headers[name].(map[string]any)
		v := a.header.Get(name)
		if v == "" {
			if h["required"] == true {
				c.t.Errorf("%s %s: header %s is required by the document and missing", method, path, name)
			}
			continue
		}
		if err := c.d.schema(c.t, rp+"/headers/"+ptr(name)+"/schema").Validate(v); err != nil {
			c.t.Errorf("%s %s: header %s: %q: %v", method, path, name, v, err)
		}
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(a.body) > 0 {
			c.t.Errorf("%s %s: status %d has no documented body, got %.200q", method, path, a.status, a.body)
		}
		return
	}
	key := mediaKey(content, a.header.Get("Content-Type"))
	if key == "" {
		c.t.Errorf("%s %s: Content-Type %q is not documented for %d (%v)", method, path, a.header.Get("Content-Type"), a.status, slices.Collect(maps.Keys(content)))
		return
	}
	if key != "application/json" {
		return
	}
	s := c.d.schema(c.t, rp+"/content/application~1json/schema")
	if err := s.Validate(instance(c.t, a.body)); err != nil {
		c.t.Errorf("%s %s: the %d answer does not match the document:\n%s\n%v", method, path, a.status, a.body, err)
	}
}

// decode reads an answer's JSON.
func (a oaAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %.200q: %v", a.body, err)
	}
}

// mustReject proves a schema strict: mutations of a valid answer (each of
// the required fields named renamed, removed or of another type; a field
// added; a time not in UTC) fail.
func mustReject(t *testing.T, d *oaDoc, schemaPtr, what string, valid []byte, fields ...string) {
	t.Helper()
	s := d.schema(t, schemaPtr)
	if err := s.Validate(instance(t, valid)); err != nil {
		t.Fatalf("%s: the unmutated answer is invalid: %v", what, err)
	}
	try := func(name string, mutate func(m map[string]any)) {
		t.Helper()
		m := instance(t, valid).(map[string]any)
		mutate(m)
		if err := s.Validate(m); err == nil {
			t.Errorf("%s: %s still validates", what, name)
		}
	}
	for _, f := range fields {
		try("renaming "+f, func(m map[string]any) { m[f+"_renamed"] = m[f]; delete(m, f) })
		try("removing "+f, func(m map[string]any) { delete(m, f) })
		try(f+" of another type", func(m map[string]any) { m[f] = map[string]any{"unexpected": true} })
	}
	try("adding a field", func(m map[string]any) { m["unexpected_field"] = "x" })
	if _, ok := instance(t, valid).(map[string]any)["created_at"]; ok {
		try("a created_at not in UTC", func(m map[string]any) { m["created_at"] = "2026-03-01T10:00:00+02:00" })
		try("a created_at that is no time", func(m map[string]any) { m["created_at"] = "yesterday" })
	}
}

func TestOpenAPIResponses(t *testing.T) {
	d := loadOpenAPI(t)
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	// Real policies on two channels, so that the composer's and the send
	// path's decisions carry their optional fields.
	e.svc.SetChannel(switchboard.ChannelSMS, sms.New(sms.Config{}), nopSender{})
	e.svc.SetChannel(switchboard.ChannelWhatsApp, &whatsapp.Channel{}, nopSender{})
	c := &oaCall{t: t, d: d, base: e.url, covered: map[string]bool{}}

	// Two customers: Ana by web form; Bo by SMS, a voicemail with its
	// recording and transcript, and a WhatsApp message two days old (its
	// 24-hour window closed).
	e.postForm(map[string]string{"name": "Ana", "email": "ana@example.com", "subject": "Parcel", "message": "Where is my parcel?"})
	phone := []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550100"}}
	now := time.Now().UTC()
	res, err := e.svc.Ingest(ctx, []switchboard.Inbound{
		{Channel: switchboard.ChannelWhatsApp, ProviderID: "wamid.1", SenderName: "Bo", Identities: phone, ContentType: switchboard.ContentText,
			Text: "Hello on WhatsApp", ReceivedAt: now.Add(-48 * time.Hour), Original: []byte(`{"object":"whatsapp_business_account"}`)},
		{Channel: switchboard.ChannelVoice, ProviderID: "RE1", Identities: phone, ContentType: switchboard.ContentAudio,
			Attachments: []switchboard.Attachment{{Key: "voice/RE1.mp3", ContentType: "audio/mpeg", Size: 4242, Name: "voicemail.mp3", Transcript: "Please call me back"}},
			ReceivedAt:  now.Add(-2 * time.Minute)},
		{Channel: switchboard.ChannelSMS, ProviderID: "SM1", Identities: phone, ContentType: switchboard.ContentText, Text: "My invoice is wrong", ReceivedAt: now.Add(-time.Minute)},
	})
	if err != nil {
		t.Fatal(err)
	}
	bo, boCustomer, waMessage := res[2].ConversationID, res[2].CustomerID, res[0].MessageID
	if bo == "" || waMessage == "" {
		t.Fatalf("ingest: %+v", res)
	}

	// The document itself, as served: the embedded file, valid for its own
	// declaration.
	a := c.do("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", e.agent, nil, 200)
	if !bytes.Equal(a.body, d.raw) || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("the served document differs from server/openapi.json (Content-Type %q)", a.header.Get("Content-Type"))
	}

	c.do("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", "", nil, 401) // for agents only, as all of /api/v1

	// Templates and sites (admins) first: the composer lists templates.
	tpl := map[string]string{"name": "order_update", "language": "en", "category": "UTILITY", "body": "Your order {{1}} has shipped.", "status": "APPROVED"}
	c.do("PUT", "/api/v1/templates", "/api/v1/templates", e.admin, tpl, 200)
	c.do("GET", "/api/v1/templates", "/api/v1/templates", e.agent, nil, 200)
	var site struct{ Key string }
	c.do("POST", "/api/v1/sites", "/api/v1/sites", e.admin, map[string]any{"name": "Shop", "origins": []string{"https://shop.example"}}, 201).decode(t, &site)
	c.do("GET", "/api/v1/sites", "/api/v1/sites", e.admin, nil, 200)
	c.do("PATCH", "/api/v1/sites/{key}", "/api/v1/sites/"+site.Key, e.admin, map[string]any{"team": "web", "origins": []string{"https://shop.example", "https://www.shop.example"}}, 200)

	// Replies: one by SMS (the default channel after a voicemail), a note,
	// one with an upload attached, a WhatsApp template; and the composer's
	// view of SMS and of the closed WhatsApp window.
	msgs := "/api/v1/conversations/" + bo + "/messages"
	reply := c.do("POST", "/api/v1/conversations/{id}/messages", msgs, e.agent, map[string]any{"text": "We are on it."}, 202)
	note := c.do("POST", "/api/v1/conversations/{id}/messages", msgs, e.agent, map[string]any{"text": "Invoice 7 looks doubled", "note": true}, 202)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "label.png")
	fw.Write(append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 500)...))
	mw.Close()
	var up struct{ ID string }
	c.doType("POST", "/api/v1/uploads", "/api/v1/uploads", e.agent, mw.FormDataContentType(), buf.Bytes(), 201).decode(t, &up)
	c.do("POST", "/api/v1/conversations/{id}/messages", msgs, e.agent, map[string]any{"text": "Your label", "channel": "sms", "attachments": []string{up.ID}}, 202)
	c.do("POST", "/api/v1/conversations/{id}/messages", msgs, e.agent,
		map[string]any{"text": "", "channel": "whatsapp", "template": map[string]any{"name": "order_update", "language": "en", "params": []string{"A-17"}}}, 202)
	compose := "/api/v1/conversations/" + bo + "/compose"
	var dec switchboard.Decision
	c.do("GET", "/api/v1/conversations/{id}/compose", compose+"?channel=sms&text="+url.QueryEscape("Ça va ✓"), e.agent, nil, 200).decode(t, &dec)
	if dec.Segments == 0 || dec.Encoding == "" || dec.Cost == 0 || dec.Details == nil {
		t.Errorf("SMS compose %+v: want segments, encoding, cost and details to validate", dec)
	}
	c.do("GET", "/api/v1/conversations/{id}/compose", compose+"?channel=whatsapp", e.agent, nil, 200).decode(t, &dec)
	if dec.Allowed || dec.WindowEndsAt == nil || len(dec.Templates) == 0 || dec.Reason == "" {
		t.Errorf("WhatsApp compose %+v: want a refusal with the window's end and the templates", dec)
	}
	c.do("GET", "/api/v1/conversations/{id}/compose", compose, e.agent, nil, 200)

	// The conversation, its timeline page by page, the list and search.
	detail := c.do("GET", "/api/v1/conversations/{id}", "/api/v1/conversations/"+bo, e.agent, nil, 200)
	var shown struct {
		Messages []struct {
			Direction   string
			ContentType string `json:"content_type"`
			Attachments []struct{ Transcript string }
		}
		Events []struct{ Type string }
	}
	detail.decode(t, &shown)
	kinds := map[string]bool{}
	for _, m := range shown.Messages {
		kinds[m.Direction] = true
		kinds[m.ContentType] = true
		for _, at := range m.Attachments {
			kinds["attachment"] = true
			kinds["transcript"] = kinds["transcript"] || at.Transcript != ""
		}
	}
	for _, k := range []string{"in", "out", "note", "text", "audio", "attachment", "transcript"} {
		if !kinds[k] {
			t.Errorf("the conversation validated lacks a message with %s: %+v", k, shown.Messages)
		}
	}
	if len(shown.Events) == 0 {
		t.Error("the conversation validated has no events")
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	c.do("GET", "/api/v1/conversations/{id}/messages", msgs+"?limit=2", e.agent, nil, 200).decode(t, &page)
	if page.NextCursor == "" {
		t.Fatal("a 2-message page of 7 messages has no next_cursor")
	}
	c.do("GET", "/api/v1/conversations/{id}/messages", msgs+"?limit=2&before="+url.QueryEscape(page.NextCursor), e.agent, nil, 200)
	list := c.do("GET", "/api/v1/conversations", "/api/v1/conversations?limit=1", e.agent, nil, 200)
	list.decode(t, &page)
	c.do("GET", "/api/v1/conversations", "/api/v1/conversations?limit=1&cursor="+url.QueryEscape(page.NextCursor), e.agent, nil, 200)
	c.do("GET", "/api/v1/conversations", "/api/v1/conversations?status=open&channel=sms&assignee=none", e.agent, nil, 200)
	c.do("GET", "/api/v1/search", "/api/v1/search?q=invoice", e.agent, nil, 200)
	a = c.do("GET", "/api/v1/messages/{id}/original", "/api/v1/messages/"+waMessage+"/original", e.agent, nil, 200)
	if !bytes.Contains(a.body, []byte("whatsapp_business_account")) {
		t.Errorf("original: %.200q", a.body)
	}

	// Work on it: take it, prioritise it, park it.
	conv := "/api/v1/conversations/" + bo
	assigned := c.do("POST", "/api/v1/conversations/{id}/assign", conv+"/assign", e.agent, map[string]any{"agent_id": e.agentID}, 200)
	c.do("POST", "/api/v1/conversations/{id}/priority", conv+"/priority", e.admin, map[string]any{"priority": 5}, 200)
	c.do("POST", "/api/v1/conversations/{id}/status", conv+"/status", e.agent, map[string]any{"status": "pending"}, 200)
	c.do("POST", "/api/v1/conversations/{id}/assign", conv+"/assign", e.agent, map[string]any{"agent_id": nil}, 200)

	// Customers: show, merge Ana into Bo (Ana then redirects), undo it.
	customer := c.do("GET", "/api/v1/customers/{id}", "/api/v1/customers/"+boCustomer, e.agent, nil, 200)
	var lst struct {
		Conversations []struct {
			Customer struct{ ID string }
		}
	}
	c.do("GET", "/api/v1/conversations", "/api/v1/conversations?channel=webform", e.agent, nil, 200).decode(t, &lst)
	if len(lst.Conversations) != 1 {
		t.Fatalf("Ana's conversation: %+v", lst)
	}
	ana := lst.Conversations[0].Customer.ID
	c.do("POST", "/api/v1/customers/{id}/merge", "/api/v1/customers/"+boCustomer+"/merge", e.admin, map[string]any{"other_id": ana}, 200)
	c.do("GET", "/api/v1/customers/{id}", "/api/v1/customers/"+ana, e.agent, nil, 308)
	c.do("POST", "/api/v1/customers/{id}/unmerge", "/api/v1/customers/"+boCustomer+"/unmerge", e.admin, map[string]any{"other_id": ana}, 200)

	// Agents and routing.
	agents := c.do("GET", "/api/v1/agents", "/api/v1/agents", e.agent, nil, 200)
	c.do("POST", "/api/v1/agents/{id}/status", "/api/v1/agents/"+e.agentID+"/status", e.agent, map[string]any{"status": "online"}, 200)
	agent := c.do("PATCH", "/api/v1/agents/{id}", "/api/v1/agents/"+e.agentID, e.admin, map[string]any{"skills": []string{"billing"}, "caps": map[string]any{"chat": 4}}, 200)
	c.do("GET", "/api/v1/routing", "/api/v1/routing", e.admin, nil, 200)
	routing := map[string]any{
		"teams": map[string]any{
			"": map[string]any{
				"rules":            []string{"continuity", "business_hours", "availability", "skills", "workload"},
				"hours":            map[string]any{"tz": "Europe/Paris", "week": map[string]any{"mon": [][]string{{"09:00", "17:30"}}, "sat": [][]string{{"22:00", "02:00"}}}, "holidays": []string{"2026-12-25"}},
				"after_hours":      "team",
				"after_hours_team": "night",
				"ack":              map[string]string{"sms": "We are closed.", "": "Back soon."},
				"skill_fallback":   "wait",
				"weights":          map[string]float64{"chat": 1, "email": 0.4},
			},
			"night": map[string]any{},
		},
		"keywords": []map[string]any{{"topic": "billing", "keywords": []string{"invoice", "refund"}}},
	}
	c.do("PUT", "/api/v1/routing", "/api/v1/routing", e.admin, routing, 200)
	c.do("GET", "/api/v1/routing", "/api/v1/routing", e.admin, nil, 200)

	// Errors: each with the shape and status the document declares.
	id := "/api/v1/conversations/" + bo
	unauth := c.do("GET", "/api/v1/conversations", "/api/v1/conversations", "", nil, 401)
	c.do("GET", "/api/v1/conversations", "/api/v1/conversations", "sb_not_a_token", nil, 401)
	c.do("GET", "/api/v1/conversations", "/api/v1/conversations?limit=abc", e.agent, nil, 400)
	notFound := c.do("GET", "/api/v1/conversations/{id}", "/api/v1/conversations/nope", e.agent, nil, 404)
	c.do("POST", "/api/v1/conversations/{id}/messages", id+"/messages", e.agent, []byte(`{"txt":"hi"}`), 400)
	c.doType("POST", "/api/v1/conversations/{id}/status", id+"/status", e.agent, "text/plain", []byte(`{"status":"open"}`), 415)
	c.do("GET", "/api/v1/routing", "/api/v1/routing", e.agent, nil, 403)
	c.do("PATCH", "/api/v1/sites/{key}", "/api/v1/sites/site_nope", e.admin, map[string]any{"name": "x"}, 404)
	c.do("GET", "/api/v1/search", "/api/v1/search", e.agent, nil, 400)
	const an = "/api/v1/analytics/{measure}"
	var fr struct {
		Rows []map[string]any `json:"rows"`
	}
	c.do("GET", an, "/api/v1/analytics/first_response?group=channel_hour&tz=Europe/Paris", e.admin, nil, 200).decode(t, &fr)
	if len(fr.Rows) == 0 {
		t.Error("first_response over today's replies has no rows")
	}
	c.do("GET", an, "/api/v1/analytics/resolution?group=channel&range=month", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/channel_migration", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/utilization?group=team&range=week", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/csat", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/email_health?business_hours=false", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/first_response?business_hours=true&group=hour", e.admin, nil, 200)
	c.do("GET", an, "/api/v1/analytics/first_response?tz=Mars/Olympus", e.admin, nil, 400)
	c.do("GET", an, "/api/v1/analytics/first_response", e.agent, nil, 403)
	policy := c.do("POST", "/api/v1/conversations/{id}/messages", id+"/messages", e.agent, map[string]any{"text": "Still there?", "channel": "whatsapp"}, 422)
	var refused struct {
		Error struct {
			Code    string
			Details *switchboard.Decision
		}
	}
	policy.decode(t, &refused)
	if refused.Error.Code != "channel_policy" || refused.Error.Details == nil || refused.Error.Details.Allowed {
		t.Errorf("refusal %s: want channel_policy with the decision", policy.body)
	}
	if got := unauth.header.Get("WWW-Authenticate"); got == "" {
		t.Error("a 401 without WWW-Authenticate")
	}

	// The realtime socket, served by the same Handler: 401 without a
	// token, 426 to a plain GET, 101 to a WebSocket handshake.
	hub := &realtime.Hub{Inbox: e.svc.Service, Bus: bus.NewMemory(), Logger: slog.New(slog.DiscardHandler)}
	rt := httptest.NewServer((&server.Server{Inbox: e.svc.Service, Logger: slog.New(slog.DiscardHandler), Realtime: hub}).Handler())
	t.Cleanup(rt.Close)
	rc := &oaCall{t: t, d: d, base: rt.URL, covered: c.covered}
	rc.do("GET", "/api/v1/realtime", "/api/v1/realtime", "", nil, 401)
	rc.do("GET", "/api/v1/realtime", "/api/v1/realtime", e.agent, nil, 426)
	wsURL := "ws" + strings.TrimPrefix(rt.URL, "http") + "/api/v1/realtime"
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + e.agent}}})
	if err != nil {
		t.Fatalf("dial the agent socket: %v", err)
	}
	rc.check("GET", "/api/v1/realtime", "/api/v1/realtime", oaAnswer{resp.StatusCode, resp.Header, nil})
	if resp.StatusCode == http.StatusSwitchingProtocols {
		c.covered["GET /api/v1/realtime"] = true
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// Every documented operation was exercised with a success answer.
	for _, r := range d.documentedRoutes(t) {
		if !c.covered[r] {
			t.Errorf("%s was not exercised against the document", r)
		}
	}

	// The schemas are strict: the real answers, mutated, fail.
	mustReject(t, d, "/components/schemas/Conversation", "Conversation", assigned.body, "id", "last_channel", "assignee", "customer", "status")
	mustReject(t, d, "/components/schemas/ConversationDetail", "ConversationDetail", detail.body, "messages", "next_cursor", "events", "last_message_at")
	mustReject(t, d, "/components/schemas/Message", "Message", reply.body, "direction", "content_type", "provider_id", "attachments")
	mustReject(t, d, "/components/schemas/Message", "a note", note.body, "sender", "status")
	mustReject(t, d, "/components/schemas/Customer", "Customer", customer.body, "identities", "claims", "conversations")
	mustReject(t, d, "/components/schemas/Agent", "Agent", agent.body, "role", "status", "caps", "active")
	mustReject(t, d, "/components/schemas/Error", "Error", notFound.body, "error")
	mustReject(t, d, "/components/schemas/PolicyError", "PolicyError", policy.body, "error")
	var inner map[string]json.RawMessage
	json.Unmarshal(notFound.body, &inner)
	mustReject(t, d, "/components/schemas/Error/properties/error", "the error object", inner["error"], "code", "message")
	var fromList struct{ Agents []json.RawMessage }
	agents.decode(t, &fromList)
	mustReject(t, d, "/components/schemas/Agent", "a listed agent", fromList.Agents[0], "email", "skills", "teams")
	var nested struct{ Messages []json.RawMessage }
	detail.decode(t, &nested)
	for _, m := range nested.Messages {
		if bytes.Contains(m, []byte(`"transcript":"Please`)) {
			var msg struct{ Attachments []json.RawMessage }
			json.Unmarshal(m, &msg)
			mustReject(t, d, "/components/schemas/Attachment", "Attachment", msg.Attachments[0], "url", "transcript", "size")
		}
	}
}
