package messenger_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// sender returns a Channel for ch sending through the Graph stand-in,
// with a local object store holding files, the customer last writing ago.
func sender(t *testing.T, ch switchboard.Channel, ago time.Duration) (*messenger.Channel, *metatest.Server, switchboard.BlobStore) {
	t.Helper()
	g := metatest.New("secret", "EAAGpage")
	ts := httptest.NewServer(g.Handler())
	g.SetBaseURL(ts.URL)
	t.Cleanup(func() { g.Close(); ts.Close() })
	blobs, err := blob.NewLocal(t.TempDir(), "", bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	c := &messenger.Channel{
		Client: &messenger.Client{BaseURL: ts.URL + "/v25.0", PageID: g.PageID(), Token: "EAAGpage", HTTP: ts.Client(), Channel: ch},
		Blobs:  blobs, Clock: fixedClock(now),
		LastInbound: func(context.Context, string) (time.Time, error) { return now.Add(-ago), nil },
	}
	return c, g, blobs
}

func store(t *testing.T, blobs switchboard.BlobStore, name, ctype string, data []byte) switchboard.Attachment {
	t.Helper()
	key := "uploads/2026/03/02/" + name
	if err := blobs.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		t.Fatal(err)
	}
	return switchboard.Attachment{Key: key, ContentType: ctype, Size: int64(len(data)), Name: name}
}

func TestSendTextThenAttachments(t *testing.T) {
	c, g, blobs := sender(t, switchboard.ChannelMessenger, time.Hour)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 70_000)...)
	pdf := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 3000)...)
	atts := []switchboard.Attachment{store(t, blobs, "lid.png", "image/png", png), store(t, blobs, "invoice.pdf", "application/pdf", pdf)}
	to := []switchboard.IdentityRef{{Kind: switchboard.IdentityMessengerPSID, Value: "6922891234567890"}}
	id, err := c.Send(context.Background(), &switchboard.Outbound{MessageID: "m1", ConversationID: "c1", To: to, Text: "Here you go", Attachments: atts})
	if err != nil {
		t.Fatal(err)
	}
	ups, sends := g.Uploads(), g.MessengerSends()
	if len(ups) != 2 || len(sends) != 3 || sends[0].MID != id {
		t.Fatalf("uploads %+v\nsends %+v\nid %q", ups, sends, id)
	}
	for i, want := range []struct {
		kind, ctype string
		data        []byte
	}{{"image", "image/png", png}, {"file", "application/pdf", pdf}} {
		if u := ups[i]; u.Product != "messenger" || u.Type != want.kind || u.MimeType != want.ctype || !u.Reusable || !bytes.Equal(u.Data, want.data) || u.Filename != atts[i].Name {
			t.Errorf("upload %d: %+v", i, u)
		}
	}
	// The documented Send API bodies, byte for byte: the text, then each
	// attachment by its id.
	want := []string{
		`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"text":"Here you go"}}`,
		`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"attachment_id":"` + ups[0].ID + `"}}}}`,
		`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"file","payload":{"attachment_id":"` + ups[1].ID + `"}}}}`,
	}
	for i, w := range want {
		if string(sends[i].Body) != w {
			t.Errorf("send %d\n got  %s\n want %s", i, sends[i].Body, w)
		}
	}
}

func TestSendInstagramVideoWithHumanAgentTag(t *testing.T) {
	c, g, blobs := sender(t, switchboard.ChannelInstagram, 30*time.Hour)
	g.InstagramText("http://unused.invalid/", "1234567890123456", "hi") // the stand-in learns the IGSID is Instagram's
	mp4 := append([]byte("\x00\x00\x00\x18ftypmp42"), make([]byte, 4000)...)
	att := store(t, blobs, "unboxing.mp4", "video/mp4", mp4)
	to := []switchboard.IdentityRef{{Kind: switchboard.IdentityInstagramID, Value: "1234567890123456"}}
	id, err := c.Send(context.Background(), &switchboard.Outbound{To: to, Attachments: []switchboard.Attachment{att}})
	if err != nil {
		t.Fatal(err)
	}
	ups, sends := g.Uploads(), g.MessengerSends()
	if len(ups) != 1 || ups[0].Product != "instagram" || ups[0].Type != "video" || !bytes.Equal(ups[0].Data, mp4) {
		t.Fatalf("uploads %+v", ups)
	}
	want := `{"recipient":{"id":"1234567890123456"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"attachment":{"type":"video","payload":{"attachment_id":"` + ups[0].ID + `"}}}}`
	if len(sends) != 1 || sends[0].MID != id || string(sends[0].Body) != want {
		t.Fatalf("sends %+v\nwant %s", sends, want)
	}
}

func TestSendAttachmentRefusals(t *testing.T) {
	ctx := context.Background()
	psid := []switchboard.IdentityRef{{Kind: switchboard.IdentityMessengerPSID, Value: "6922891234567890"}}
	igsid := []switchboard.IdentityRef{{Kind: switchboard.IdentityInstagramID, Value: "1234567890123456"}}
	tests := []struct {
		name string
		ch   switchboard.Channel
		ago  time.Duration
		out  func(switchboard.BlobStore) *switchboard.Outbound
		msg  string
	}{
		{"file gone", switchboard.ChannelMessenger, time.Hour, func(switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: psid, Attachments: []switchboard.Attachment{{Key: "uploads/gone.pdf", Name: "gone.pdf", ContentType: "application/pdf", Size: 3}}}
		}, "gone.pdf"},
		{"stored file over 8 MB", switchboard.ChannelInstagram, time.Hour, func(b switchboard.BlobStore) *switchboard.Outbound {
			a := store(t, b, "big.jpg", "image/jpeg", make([]byte, messenger.MaxInstagramImageBytes+1))
			a.Size = 10
			return &switchboard.Outbound{To: igsid, Attachments: []switchboard.Attachment{a}}
		}, "limited to 8 MB"},
		{"pdf on Instagram", switchboard.ChannelInstagram, time.Hour, func(b switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: igsid, Attachments: []switchboard.Attachment{store(t, b, "a.pdf", "application/pdf", []byte("%PDF"))}}
		}, "Instagram cannot carry a.pdf"},
		{"after 7 days", switchboard.ChannelMessenger, 8 * 24 * time.Hour, func(b switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: psid, Attachments: []switchboard.Attachment{store(t, b, "a.pdf", "application/pdf", []byte("%PDF"))}}
		}, "More than 7 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, g, blobs := sender(t, tt.ch, tt.ago)
			_, err := c.Send(ctx, tt.out(blobs))
			if !switchboard.IsPermanent(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v", err)
			}
			if n, m := len(g.Uploads()), len(g.MessengerSends()); n+m != 0 {
				t.Fatalf("%d uploads and %d sends made", n, m)
			}
		})
	}
}
