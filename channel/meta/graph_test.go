package meta

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

func TestEndpoint(t *testing.T) {
	tests := []struct {
		base string
		segs []string
		want string
		bad  bool
	}{
		{"https://graph.facebook.com/v25.0", []string{"106540352242922", "messages"}, "https://graph.facebook.com/v25.0/106540352242922/messages", false},
		{"https://graph.facebook.com/v25.0/", []string{"1", "messages"}, "https://graph.facebook.com/v25.0/1/messages", false},
		{"http://127.0.0.1:9999", []string{"../../x", "messages"}, "http://127.0.0.1:9999/..%2F..%2Fx/messages", false},
		{"http://127.0.0.1:9999", []string{"a b?c#d"}, "http://127.0.0.1:9999/a%20b%3Fc%23d", false},
		{"", []string{"1"}, "", true},
		{"graph.facebook.com/v25.0", []string{"1"}, "", true},
		{"ftp://graph.facebook.com", []string{"1"}, "", true},
		{"https://graph.facebook.com/v25.0?x=1", []string{"1"}, "", true},
		{"https://graph.facebook.com/v25.0", []string{"", "messages"}, "", true},
		{"://bad", []string{"1"}, "", true},
	}
	for _, tt := range tests {
		got, err := Endpoint(tt.base, tt.segs...)
		if tt.bad {
			if err == nil || switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Errorf("Endpoint(%q, %q) = %q, %v; want an invalid error", tt.base, tt.segs, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Endpoint(%q, %q) = %q, %v; want %q", tt.base, tt.segs, got, err, tt.want)
		}
	}
}

func TestDecodeAPIError(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      APIError
		permanent bool
		rateLimit bool
		msg       string
	}{
		{
			name:   "messenger outside window",
			status: 400,
			body:   `{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"AbCdEf123"}}`,
			want: APIError{StatusCode: 400, Message: "(#10) This message is sent outside of allowed window.", Type: "OAuthException",
				Code: 10, Subcode: 2018278, FBTraceID: "AbCdEf123"},
			permanent: true,
			msg:       "graph api: HTTP 400: (#10) This message is sent outside of allowed window. (code 10, subcode 2018278, fbtrace_id AbCdEf123)",
		},
		{
			name:   "whatsapp with error_data",
			status: 400,
			body:   `{"error":{"message":"(#131030) Recipient phone number not in allowed list","type":"OAuthException","code":131030,"error_data":{"messaging_product":"whatsapp","details":"Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."},"error_subcode":2655007,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}`,
			want: APIError{StatusCode: 400, Message: "(#131030) Recipient phone number not in allowed list", Type: "OAuthException",
				Code: 131030, Subcode: 2655007, FBTraceID: "Az8or2yhqkZfEZ-_4Qn_Bam",
				Details: "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."},
			permanent: true,
		},
		{
			name:      "whatsapp throughput on 400",
			status:    400,
			body:      `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"x"}}`,
			want:      APIError{StatusCode: 400, Message: "(#130429) Rate limit hit", Type: "OAuthException", Code: 130429, FBTraceID: "x"},
			rateLimit: true,
		},
		{
			name:      "http 429",
			status:    429,
			body:      `{"error":{"message":"slow down","code":80007}}`,
			want:      APIError{StatusCode: 429, Message: "slow down", Code: 80007},
			rateLimit: true,
		},
		{
			name:   "transient flag",
			status: 400,
			body:   `{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"is_transient":true}}`,
			want:   APIError{StatusCode: 400, Message: "An unexpected error has occurred. Please retry your request later.", Type: "OAuthException", Code: 2, Transient: true},
		},
		{
			name:   "server error",
			status: 500,
			body:   `{"error":{"message":"(#131000) Something went wrong","code":131000}}`,
			want:   APIError{StatusCode: 500, Message: "(#131000) Something went wrong", Code: 131000},
		},
		{
			name:      "not graph json",
			status:    404,
			body:      "404 page not found\n",
			want:      APIError{StatusCode: 404, Message: `Not Found: "404 page not found"`},
			permanent: true,
			msg:       `graph api: HTTP 404: Not Found: "404 page not found"`,
		},
		{
			name:   "error_data as a string",
			status: 502,
			body:   `{"error":{"message":"bad gateway","code":1,"error_data":"oops"}}`,
			want:   APIError{StatusCode: 502, Message: "bad gateway", Code: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodeAPIError(tt.status, []byte(tt.body))
			if *got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", *got, tt.want)
			}
			if got.Permanent() != tt.permanent || got.RateLimited() != tt.rateLimit {
				t.Fatalf("Permanent=%v RateLimited=%v, want %v %v", got.Permanent(), got.RateLimited(), tt.permanent, tt.rateLimit)
			}
			if tt.msg != "" && got.Error() != tt.msg {
				t.Fatalf("Error() = %q\nwant      %q", got.Error(), tt.msg)
			}
		})
	}
}

func TestDecodeAPIErrorLongBody(t *testing.T) {
	body := strings.Repeat("é", 500)
	e := DecodeAPIError(502, []byte(body))
	if len(e.Message) > 2*maxSnippet+64 {
		t.Fatalf("message not bounded: %d bytes", len(e.Message))
	}
	if !strings.HasPrefix(e.Message, `Bad Gateway: "éé`) {
		t.Fatalf("message = %.40q", e.Message)
	}
}

func TestCall(t *testing.T) {
	type reply struct {
		ID string `json:"id"`
	}
	var gotMethod, gotPath, gotAuth, gotCT, gotBody string
	status, answer := 200, `{"id":"ok-1"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotMethod, gotPath, gotAuth, gotCT, gotBody = r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	ctx := context.Background()

	t.Run("success", func(t *testing.T) {
		var out reply
		err := Call(ctx, srv.Client(), http.MethodPost, srv.URL+"/v1/x", "tok", map[string]string{"text": "a<b & c>d"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if out.ID != "ok-1" || gotMethod != "POST" || gotPath != "/v1/x" || gotAuth != "Bearer tok" || gotCT != "application/json" {
			t.Fatalf("out=%+v method=%s path=%s auth=%q ct=%q", out, gotMethod, gotPath, gotAuth, gotCT)
		}
		if gotBody != `{"text":"a<b & c>d"}` {
			t.Fatalf("body = %s", gotBody)
		}
	})
	t.Run("get without body", func(t *testing.T) {
		if err := Call(ctx, nil, http.MethodGet, srv.URL+"/m", "tok", nil, nil); err != nil {
			t.Fatal(err)
		}
		if gotMethod != "GET" || gotBody != "" || gotCT != "" {
			t.Fatalf("method=%s body=%q ct=%q", gotMethod, gotBody, gotCT)
		}
	})
	t.Run("permanent graph error", func(t *testing.T) {
		status, answer = 400, `{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"fbtrace_id":"T"}}`
		defer func() { status, answer = 200, `{"id":"ok-1"}` }()
		err := Call(ctx, srv.Client(), http.MethodPost, srv.URL+"/x", "tok", struct{}{}, nil)
		apiErr, ok := AsAPIError(err)
		if !ok || apiErr.Code != 100 || !switchboard.IsPermanent(err) {
			t.Fatalf("err = %v (APIError %v, permanent %v)", err, ok, switchboard.IsPermanent(err))
		}
	})
	t.Run("retryable graph error", func(t *testing.T) {
		status, answer = 503, `{"error":{"message":"down","code":1}}`
		defer func() { status, answer = 200, `{"id":"ok-1"}` }()
		err := Call(ctx, srv.Client(), http.MethodPost, srv.URL+"/x", "tok", struct{}{}, nil)
		if _, ok := AsAPIError(err); !ok || switchboard.IsPermanent(err) {
			t.Fatalf("err = %v, permanent %v", err, switchboard.IsPermanent(err))
		}
	})
	t.Run("undecodable success", func(t *testing.T) {
		answer = `not json`
		defer func() { answer = `{"id":"ok-1"}` }()
		var out reply
		err := Call(ctx, srv.Client(), http.MethodPost, srv.URL+"/x", "tok", struct{}{}, &out)
		if err == nil || !strings.Contains(err.Error(), "decoding reply") || !switchboard.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("transport error is retryable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		err := Call(ctx, nil, http.MethodPost, url+"/x", "tok", struct{}{}, nil)
		if err == nil || switchboard.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := Call(cctx, srv.Client(), http.MethodGet, srv.URL+"/x", "tok", nil, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unbuildable request is permanent", func(t *testing.T) {
		err := Call(ctx, nil, "BAD METHOD", "http://x", "tok", nil, nil)
		if err == nil || !switchboard.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMarshalJSONKeepsMarkup(t *testing.T) {
	b, err := MarshalJSON(map[string]string{"t": "<b>&</b>"})
	if err != nil || string(b) != `{"t":"<b>&</b>"}` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
}
