package whatsapp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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
