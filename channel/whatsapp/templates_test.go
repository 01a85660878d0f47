package whatsapp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTemplatesFollowsPaging(t *testing.T) {
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Path != "/102290129340398/message_templates" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"message":"bad request","type":"OAuthException","code":100}}`)
			return
		}
		if r.URL.Query().Get("after") == "" {
			fmt.Fprintf(w, `{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","components":[{"type":"HEADER","format":"TEXT","text":"Order"},{"type":"BODY","text":"Your order {{1}} is {{2}}."}]},{"name":"no_body","language":"en","status":"APPROVED","components":[]}],"paging":{"cursors":{"after":"X"},"next":"%s/102290129340398/message_templates?after=X"}}`, ts.URL)
			return
		}
		fmt.Fprint(w, `{"data":[{"name":"welcome","language":"pt_BR","status":"PENDING","category":"MARKETING","components":[{"type":"BODY","text":"Olá {{1}}"}]}],"paging":{"cursors":{"before":"X"}}}`)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL, Token: "tok"}
	got, err := c.Templates(context.Background(), "102290129340398")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "order_update" || got[0].Body != "Your order {{1}} is {{2}}." || got[0].Status != "APPROVED" ||
		got[1].Name != "welcome" || got[1].Language != "pt_BR" || got[1].Status != "PENDING" {
		t.Fatalf("templates = %+v", got)
	}
	if _, err := (&Client{BaseURL: ts.URL, Token: "wrong"}).Templates(context.Background(), "102290129340398"); err == nil {
		t.Fatal("a Graph error was not reported")
	}
}
