package twiliotest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// TestRecording: a recording is served at the RecordingUrl Twilio sends,
// as WAV, to the account's credentials only, until it is deleted.
func TestRecording(t *testing.T) {
	s, ts, c := standIn(t)
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt a short recording")
	sid, u := s.AddRecording(wav)
	if !strings.HasPrefix(sid, "RE") || len(sid) != 34 || u != ts.URL+"/2010-04-01/Accounts/"+testSID+"/Recordings/"+sid {
		t.Fatalf("AddRecording = %q, %q", sid, u)
	}
	ctx := context.Background()
	for _, v := range []string{u, u + ".wav"} {
		data, ct, err := c.FetchMedia(ctx, v, 0)
		if err != nil || !bytes.Equal(data, wav) || ct != "audio/x-wav" {
			t.Errorf("FetchMedia(%s) = %q, %q, %v", v, data, ct, err)
		}
	}
	if _, _, err := c.FetchMedia(ctx, u+".mp3", 0); asAPIError(t, err).Status != 404 {
		t.Errorf(".mp3: %v", err)
	}
	wrong := &twilio.Client{BaseURL: ts.URL, AccountSID: testSID, AuthToken: "wrong", HTTP: ts.Client()}
	if _, _, err := wrong.FetchMedia(ctx, u, 0); asAPIError(t, err).Code != CodeAuthenticate {
		t.Errorf("wrong credentials: %v", err)
	}
	del, _ := http.NewRequest(http.MethodDelete, u, nil)
	del.SetBasicAuth(testSID, testToken)
	resp, err := ts.Client().Do(del)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, _, err := c.FetchMedia(ctx, u, 0); asAPIError(t, err).Code != CodeNotFound {
		t.Errorf("after DELETE: %v", err)
	}
}
