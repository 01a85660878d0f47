package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// maxTemplatePages bounds a sync against a runaway paging loop.
const maxTemplatePages = 50

type templatesPage struct {
	Data []struct {
		Name       string `json:"name"`
		Language   string `json:"language"`
		Status     string `json:"status"`
		Category   string `json:"category"`
		Components []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"components"`
	} `json:"data"`
	Paging struct {
		Next string `json:"next"`
	} `json:"paging"`
}

// Templates lists the WhatsApp Business Account's message templates from
// the Graph API (GET /{waba-id}/message_templates, following paging.next),
// with each template's BODY component as its body.
func (c *Client) Templates(ctx context.Context, businessAccountID string) ([]switchboard.MessageTemplate, error) {
	endpoint, err := meta.Endpoint(c.BaseURL, businessAccountID, "message_templates")
	if err != nil {
		return nil, fmt.Errorf("whatsapp: templates: %w", err)
	}
	endpoint += "?" + url.Values{"fields": {"name,language,status,category,components"}, "limit": {"100"}}.Encode()
	var out []switchboard.MessageTemplate
	for page := 0; endpoint != "" && page < maxTemplatePages; page++ {
		var p templatesPage
		if err := meta.Call(ctx, c.HTTP, http.MethodGet, endpoint, c.Token, nil, &p); err != nil {
			return nil, fmt.Errorf("whatsapp: templates: %w", err)
		}
		for _, t := range p.Data {
			tpl := switchboard.MessageTemplate{Name: t.Name, Language: t.Language, Category: t.Category, Status: strings.ToUpper(t.Status)}
			for _, comp := range t.Components {
				if strings.EqualFold(comp.Type, "BODY") {
					tpl.Body = comp.Text
				}
			}
			if tpl.Name != "" && tpl.Language != "" && tpl.Body != "" {
				out = append(out, tpl)
			}
		}
		endpoint = p.Paging.Next
	}
	return out, nil
}

// TemplateStore keeps the synced templates (package inbox).
type TemplateStore interface {
	PutTemplate(ctx context.Context, actor switchboard.Actor, t switchboard.MessageTemplate) error
}

// SyncTemplates copies the WhatsApp Business Account's message templates
// into the store now and then every interval until ctx ends; admins may
// still add or edit them. A failed sync is logged and tried again at the
// next interval.
func SyncTemplates(ctx context.Context, client *Client, businessAccountID string, store TemplateStore, every time.Duration, log *slog.Logger) {
	for {
		ts, err := client.Templates(ctx, businessAccountID)
		if err != nil {
			log.Warn("whatsapp: template sync", "err", err)
		}
		for _, t := range ts {
			if err := store.PutTemplate(ctx, switchboard.System, t); err != nil {
				log.Warn("whatsapp: store template", "name", t.Name, "err", err)
			}
		}
		if err == nil {
			log.Info("whatsapp: templates synced", "templates", len(ts))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
