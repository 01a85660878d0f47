package twiliotest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const numbersPath = "/2010-04-01/Accounts/" + testSID + "/IncomingPhoneNumbers"

// get sends an authenticated GET and decodes the JSON answer into out.
func get(t *testing.T, ts *httptest.Server, path, pass string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	req.SetBasicAuth(testSID, pass)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return resp
}

type numberPage struct {
	Items           []map[string]any `json:"incoming_phone_numbers"`
	NextPageURI     *string          `json:"next_page_uri"`
	PreviousPageURI *string          `json:"previous_page_uri"`
	Page            int              `json:"page"`
	PageSize        int              `json:"page_size"`
	Start           int              `json:"start"`
	End             int              `json:"end"`
	URI             string           `json:"uri"`
}

func phoneNumbers(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		out = append(out, it["phone_number"].(string))
	}
	return out
}

func ptr(s string) *string { return &s }

func TestListPhoneNumbersPaging(t *testing.T) {
	nums := []string{"+14155550100", "+14155550101", "+14155550102", "+14155550103", "+447700900123"}
	_, ts, _ := standIn(t, WithPhoneNumbers(nums...))
	for _, tc := range []struct {
		query      string
		want       []string
		size, page int
		next, prev *string
	}{
		{"", nums, 50, 0, nil, nil},
		{"?PageSize=2", nums[:2], 2, 0, ptr(numbersPath + ".json?PageSize=2&Page=1"), nil},
		{"?PageSize=2&Page=1", nums[2:4], 2, 1, ptr(numbersPath + ".json?PageSize=2&Page=2"), ptr(numbersPath + ".json?PageSize=2&Page=0")},
		{"?PageSize=2&Page=2", nums[4:], 2, 2, nil, ptr(numbersPath + ".json?PageSize=2&Page=1")},
		{"?PageSize=2&Page=9", nil, 2, 9, nil, ptr(numbersPath + ".json?PageSize=2&Page=8")},
		{"?PageSize=5000", nums, 1000, 0, nil, nil},
	} {
		var page numberPage
		resp := get(t, ts, numbersPath+".json"+tc.query, testToken, &page)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", tc.query, resp.StatusCode)
			continue
		}
		if got := phoneNumbers(page.Items); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: numbers %v, want %v", tc.query, got, tc.want)
		}
		if page.PageSize != tc.size || page.Page != tc.page ||
			!reflect.DeepEqual(page.NextPageURI, tc.next) || !reflect.DeepEqual(page.PreviousPageURI, tc.prev) {
			t.Errorf("%s: page %d size %d next %v prev %v, want %d %d %v %v", tc.query,
				page.Page, page.PageSize, deref(page.NextPageURI), deref(page.PreviousPageURI),
				tc.page, tc.size, deref(tc.next), deref(tc.prev))
		}
	}

	// The next_page_uri is a path on the API host that serves the next page.
	var first, second numberPage
	get(t, ts, numbersPath+".json?PageSize=3", testToken, &first)
	get(t, ts, *first.NextPageURI, testToken, &second)
	if got := phoneNumbers(second.Items); !reflect.DeepEqual(got, nums[3:]) || second.Start != 3 || second.End != 4 {
		t.Errorf("second page %v start %d end %d", got, second.Start, second.End)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestPhoneNumberResource(t *testing.T) {
	s, ts, _ := standIn(t, WithPhoneNumbers("+14155550100", "+447700900123"))
	us, _ := s.Number("+14155550100")
	uk, _ := s.Number("+447700900123")
	if !validSID(us.SID, "PN") || us.SID == uk.SID {
		t.Errorf("SIDs %q %q", us.SID, uk.SID)
	}
	if us.FriendlyName != "(415) 555-0100" || uk.FriendlyName != "+447700900123" {
		t.Errorf("friendly names %q %q", us.FriendlyName, uk.FriendlyName)
	}
	if !us.Created.Equal(fixedNow) {
		t.Errorf("created %v, want the clock's %v", us.Created, fixedNow)
	}
	if _, ok := s.Number("+14155559999"); ok {
		t.Error("Number found a number the account does not have")
	}

	var res map[string]any
	if resp := get(t, ts, numbersPath+"/"+us.SID+".json", testToken, &res); resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch: %d %v", resp.StatusCode, res)
	}
	for k, v := range map[string]any{
		"sid": us.SID, "account_sid": testSID, "phone_number": "+14155550100", "friendly_name": "(415) 555-0100",
		"sms_url": "", "sms_method": "POST", "voice_url": "", "voice_method": "POST", "status_callback": "",
		"sms_application_sid": "", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
		"uri": numbersPath + "/" + us.SID + ".json",
	} {
		if res[k] != v {
			t.Errorf("%s = %v, want %v", k, res[k], v)
		}
	}
}

func TestUpdatePhoneNumber(t *testing.T) {
	later := fixedNow.Add(time.Hour)
	var clock atomic.Pointer[time.Time]
	clock.Store(&fixedNow)
	s, ts, _ := standIn(t, WithPhoneNumbers("+14155550100", "+14155550101"), WithClock(func() time.Time { return *clock.Load() }))
	n, _ := s.Number("+14155550100")
	path := numbersPath + "/" + n.SID + ".json"
	clock.Store(&later)

	resp, res := post(t, ts, path, testSID, testToken, url.Values{
		"SmsUrl": {"https://sb.example.com/sms"}, "SmsMethod": {"get"}, "StatusCallback": {"http://sb.example.com/status"},
	})
	if resp.StatusCode != http.StatusOK || res["sms_url"] != "https://sb.example.com/sms" || res["sms_method"] != "GET" {
		t.Fatalf("update: %d %v", resp.StatusCode, res)
	}
	got, _ := s.Number("+14155550100")
	want := n
	want.SmsURL, want.SmsMethod, want.StatusCallback, want.Updated = "https://sb.example.com/sms", "GET", "http://sb.example.com/status", later
	if got != want {
		t.Errorf("after the update: %+v\nwant %+v", got, want)
	}

	// Only the parameters given change; an empty URL clears one.
	post(t, ts, path, testSID, testToken, url.Values{"VoiceUrl": {"https://sb.example.com/voice"}, "StatusCallback": {""}})
	got, _ = s.Number("+14155550100")
	want.VoiceURL, want.StatusCallback = "https://sb.example.com/voice", ""
	if got != want {
		t.Errorf("after the second update: %+v\nwant %+v", got, want)
	}
	if other, _ := s.Number("+14155550101"); other.SmsURL != "" || other.VoiceURL != "" {
		t.Errorf("the other number changed: %+v", other)
	}
}

func TestUpdatePhoneNumberErrors(t *testing.T) {
	s, ts, _ := standIn(t, WithPhoneNumbers("+14155550100"))
	n, _ := s.Number("+14155550100")
	path := numbersPath + "/" + n.SID + ".json"
	ok := url.Values{"SmsUrl": {"https://sb.example.com/sms"}}
	with := func(k, v string) url.Values {
		f := url.Values{"SmsUrl": {"https://sb.example.com/sms"}}
		f.Set(k, v)
		return f
	}
	for name, tc := range map[string]struct {
		path, pass   string
		form         url.Values
		status, code int
	}{
		"bad SmsUrl":              {path, testToken, with("SmsUrl", "ftp://sb.example.com/sms"), 400, CodeInvalidURL},
		"relative VoiceUrl":       {path, testToken, with("VoiceUrl", "/voice"), 400, CodeInvalidURL},
		"bad StatusCallback":      {path, testToken, with("StatusCallback", "sb.example.com/status"), 400, CodeInvalidCallbackURL},
		"bad SmsMethod":           {path, testToken, with("SmsMethod", "PUT"), 400, CodeInvalidMethod},
		"empty VoiceMethod":       {path, testToken, with("VoiceMethod", ""), 400, CodeInvalidMethod},
		"bad callback method":     {path, testToken, with("StatusCallbackMethod", "DELETE"), 400, CodeInvalidMethod},
		"unknown SID":             {numbersPath + "/PN00000000000000000000000000000000.json", testToken, ok, 404, CodeNotFound},
		"malformed SID":           {numbersPath + "/PN123.json", testToken, ok, 404, CodeNotFound},
		"no .json":                {numbersPath + "/" + n.SID, testToken, ok, 404, CodeNotFound},
		"other account":           {"/2010-04-01/Accounts/AC11111111111111111111111111111111/IncomingPhoneNumbers/" + n.SID + ".json", testToken, ok, 404, CodeNotFound},
		"wrong token":             {path, "wrong", ok, 401, CodeAuthenticate},
		"bad URL among good ones": {path, testToken, url.Values{"SmsUrl": {"https://sb.example.com/sms"}, "VoiceUrl": {"javascript:alert(1)"}}, 400, CodeInvalidURL},
	} {
		t.Run(name, func(t *testing.T) {
			resp, res := post(t, ts, tc.path, testSID, tc.pass, tc.form)
			if resp.StatusCode != tc.status || res["code"] != float64(tc.code) || res["status"] != float64(tc.status) {
				t.Errorf("answer %d %v, want %d with code %d", resp.StatusCode, res, tc.status, tc.code)
			}
			if got, _ := s.Number("+14155550100"); got != n {
				t.Errorf("a refused update changed the number: %+v", got)
			}
		})
	}

	req, _ := http.NewRequest(http.MethodDelete, ts.URL+path, nil)
	req.SetBasicAuth(testSID, testToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", resp.StatusCode)
	}
	if _, ok := s.Number("+14155550100"); !ok {
		t.Error("DELETE released the number")
	}
}

func TestListMessagingServices(t *testing.T) {
	const other = "MGfedcba9876543210fedcba9876543210"
	_, ts, _ := standIn(t, WithMessagingService(serviceID, "Support"), WithMessagingService(other, "Sales"))
	var page struct {
		Services []map[string]any `json:"services"`
		Meta     struct {
			NextPageURL     *string `json:"next_page_url"`
			PreviousPageURL *string `json:"previous_page_url"`
			Key             string  `json:"key"`
			PageSize        int     `json:"page_size"`
		} `json:"meta"`
	}
	if resp := get(t, ts, "/v1/Services?PageSize=1", testToken, &page); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(page.Services) != 1 || page.Services[0]["sid"] != serviceID || page.Services[0]["friendly_name"] != "Support" ||
		page.Services[0]["inbound_request_url"] != nil || page.Services[0]["use_inbound_webhook_on_number"] != false {
		t.Errorf("first page %v", page.Services)
	}
	if want := ts.URL + "/v1/Services?PageSize=1&Page=1"; deref(page.Meta.NextPageURL) != want || page.Meta.PreviousPageURL != nil ||
		page.Meta.Key != "services" || page.Meta.PageSize != 1 {
		t.Errorf("meta %+v, want next %s", page.Meta, want)
	}
	next := strings.TrimPrefix(*page.Meta.NextPageURL, ts.URL)
	page.Services, page.Meta.NextPageURL = nil, nil
	get(t, ts, next, testToken, &page)
	if len(page.Services) != 1 || page.Services[0]["sid"] != other || page.Meta.NextPageURL != nil {
		t.Errorf("second page %v, next %v", page.Services, deref(page.Meta.NextPageURL))
	}

	var e map[string]any
	if resp := get(t, ts, "/v1/Services", "wrong", &e); resp.StatusCode != http.StatusUnauthorized || e["code"] != float64(CodeAuthenticate) {
		t.Errorf("wrong token: %d %v", resp.StatusCode, e)
	}
}

func TestNumberOptionsPanic(t *testing.T) {
	for name, opt := range map[string]Option{
		"national number": WithPhoneNumbers("4155550100"),
		"service SID":     WithMessagingService("PN0123456789abcdef0123456789abcdef", "x"),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			New(testSID, testToken, opt)
		})
	}
}
