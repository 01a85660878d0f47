package whatsapp_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// sender returns a Channel sending through the Graph stand-in, with a
// local object store holding files, and the customer last writing an
// hour ago.
func sender(t *testing.T) (*whatsapp.Channel, *metatest.Server, switchboard.BlobStore) {
	t.Helper()
	g := metatest.New("secret", "EAAtoken")
	ts := httptest.NewServer(g.Handler())
	g.SetBaseURL(ts.URL)
	t.Cleanup(func() { g.Close(); ts.Close() })
	blobs, err := blob.NewLocal(t.TempDir(), "", bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	c := &whatsapp.Channel{
		Client: &whatsapp.Client{BaseURL: ts.URL + "/v25.0", PhoneNumberID: g.PhoneNumberID(), Token: "EAAtoken", HTTP: ts.Client()},
		Blobs:  blobs, Clock: fixedClock(now),
		LastInbound: func(context.Context, string) (time.Time, error) { return now.Add(-time.Hour), nil },
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

var customer = []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+16505551234"}}

func TestSendImageWithCaption(t *testing.T) {
	c, g, blobs := sender(t)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 70_000)...)
	img := store(t, blobs, "lid.png", "image/png", png)
	id, err := c.Send(context.Background(), &switchboard.Outbound{MessageID: "m1", ConversationID: "c1", To: customer,
		Text: "The lid, as promised.", Attachments: []switchboard.Attachment{img}})
	if err != nil {
		t.Fatal(err)
	}
	ups, sends := g.Uploads(), g.WhatsAppSends()
	if len(ups) != 1 || !bytes.Equal(ups[0].Data, png) || ups[0].Type != "image/png" || ups[0].MimeType != "image/png" || ups[0].Filename != "lid.png" {
		t.Fatalf("uploads %+v", ups)
	}
	if len(sends) != 1 || sends[0].WAMID != id {
		t.Fatalf("sends %+v, id %q", sends, id)
	}
	// The documented image message, byte for byte.
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"image","image":{"id":"` + ups[0].ID + `","caption":"The lid, as promised."}}`
	if string(sends[0].Body) != want {
		t.Fatalf("body\n got  %s\n want %s", sends[0].Body, want)
	}
}

func TestSendTextThenFiles(t *testing.T) {
	c, g, blobs := sender(t)
	mp3 := store(t, blobs, "note.mp3", "audio/mpeg", append([]byte("ID3"), make([]byte, 5000)...))
	docx := store(t, blobs, "Angebot Müller.docx", "application/zip", append([]byte("PK\x03\x04"), make([]byte, 9000)...))
	id, err := c.Send(context.Background(), &switchboard.Outbound{MessageID: "m1", ConversationID: "c1", To: customer,
		Text: "A voice note & the offer <3", Attachments: []switchboard.Attachment{mp3, docx}})
	if err != nil {
		t.Fatal(err)
	}
	ups, sends := g.Uploads(), g.WhatsAppSends()
	if len(ups) != 2 || len(sends) != 3 || id != sends[0].WAMID {
		t.Fatalf("uploads %+v\nsends %+v\nid %q", ups, sends, id)
	}
	if ups[1].Type != "application/vnd.openxmlformats-officedocument.wordprocessingml.document" || ups[1].Filename != "Angebot M_ller.docx" {
		t.Errorf("docx upload %+v", ups[1])
	}
	want := []string{
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"A voice note & the offer <3"}}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"audio","audio":{"id":"` + ups[0].ID + `"}}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"document","document":{"id":"` + ups[1].ID + `","filename":"Angebot Müller.docx"}}`,
	}
	for i, w := range want {
		if string(sends[i].Body) != w {
			t.Errorf("send %d\n got  %s\n want %s", i, sends[i].Body, w)
		}
	}
	for i, u := range ups {
		rc, _, _ := blobs.Get(context.Background(), []switchboard.Attachment{mp3, docx}[i].Key)
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		if !bytes.Equal(u.Data, b.Bytes()) {
			t.Errorf("upload %d differs from the stored file", i)
		}
	}
}

func TestSendAttachmentRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		out  func(blobs switchboard.BlobStore) *switchboard.Outbound
		msg  string
	}{
		{"file gone from the store", func(switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: customer, Attachments: []switchboard.Attachment{{Key: "uploads/gone.png", Name: "gone.png", ContentType: "image/png", Size: 9}}}
		}, "gone.png"},
		{"stored file larger than recorded", func(blobs switchboard.BlobStore) *switchboard.Outbound {
			a := store(t, blobs, "big.jpg", "image/jpeg", make([]byte, whatsapp.MaxImageBytes+1))
			a.Size = 10
			return &switchboard.Outbound{To: customer, Attachments: []switchboard.Attachment{a}}
		}, "limited to 5 MB"},
		{"type WhatsApp does not take", func(blobs switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: customer, Attachments: []switchboard.Attachment{store(t, blobs, "a.gif", "image/gif", []byte("GIF89a"))}}
		}, "cannot carry a.gif"},
		{"template with a file", func(blobs switchboard.BlobStore) *switchboard.Outbound {
			return &switchboard.Outbound{To: customer, Metadata: []byte(`{"template":{"name":"hello","language":"en_US"}}`),
				Attachments: []switchboard.Attachment{store(t, blobs, "a.png", "image/png", []byte("\x89PNG"))}}
		}, "without attachments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, g, blobs := sender(t)
			_, err := c.Send(ctx, tt.out(blobs))
			if !switchboard.IsPermanent(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v", err)
			}
			if n, m := len(g.Uploads()), len(g.WhatsAppSends()); n+m != 0 {
				t.Fatalf("%d uploads and %d sends made", n, m)
			}
		})
	}

	// Outside the window nothing is uploaded either.
	c, g, blobs := sender(t)
	c.LastInbound = func(context.Context, string) (time.Time, error) {
		return time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), nil
	}
	png := store(t, blobs, "a.png", "image/png", []byte("\x89PNG"))
	if _, err := c.Send(ctx, &switchboard.Outbound{To: customer, Attachments: []switchboard.Attachment{png}}); !switchboard.IsPermanent(err) || len(g.Uploads()) != 0 {
		t.Fatalf("outside the window: %v, %d uploads", err, len(g.Uploads()))
	}
	// Without an object store the sender cannot read the file.
	c, _, _ = sender(t)
	c.Blobs = nil
	if _, err := c.Send(ctx, &switchboard.Outbound{To: customer, Attachments: []switchboard.Attachment{png}}); !switchboard.IsPermanent(err) {
		t.Fatalf("no object store: %v", err)
	}
}
