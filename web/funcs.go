package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/inbox"
)

var channelNames = map[switchboard.Channel]string{
	switchboard.ChannelEmail: "E-mail", switchboard.ChannelSMS: "SMS", switchboard.ChannelWhatsApp: "WhatsApp",
	switchboard.ChannelWebform: "Web form", switchboard.ChannelMessenger: "Messenger", switchboard.ChannelInstagram: "Instagram",
	switchboard.ChannelVoice: "Voicemail", switchboard.ChannelLivechat: "Live chat",
}

// channelIcons are short glyphs: the name is the accessible label.
var channelIcons = map[switchboard.Channel]string{
	switchboard.ChannelEmail: "✉", switchboard.ChannelSMS: "SMS", switchboard.ChannelWhatsApp: "WA",
	switchboard.ChannelWebform: "Form", switchboard.ChannelMessenger: "FB", switchboard.ChannelInstagram: "IG",
	switchboard.ChannelVoice: "☎", switchboard.ChannelLivechat: "Chat",
}

type priority struct {
	Value int
	Label string
}

func (p *Pages) funcs() template.FuncMap {
	return template.FuncMap{
		"isAdmin":      func(r switchboard.Role) bool { return r.AtLeast(switchboard.RoleAdmin) },
		"isSupervisor": func(r switchboard.Role) bool { return r.AtLeast(switchboard.RoleSupervisor) },
		"agentStatuses": func() []switchboard.AgentStatus {
			return []switchboard.AgentStatus{switchboard.AgentOnline, switchboard.AgentAway, switchboard.AgentOffline}
		},
		"priorities": func() []priority {
			return []priority{{-10, "low"}, {0, "normal"}, {10, "high"}, {50, "urgent"}}
		},
		"channelName": func(c switchboard.Channel) string {
			if n, ok := channelNames[c]; ok {
				return n
			}
			return string(c)
		},
		"channelIcon": func(c switchboard.Channel) string {
			if n, ok := channelIcons[c]; ok {
				return n
			}
			return string(c)
		},
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"clock":    func(t time.Time) string { return t.UTC().Format("2 Jan 15:04") },
		"datetime": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
		// secs and pct show analytics' seconds and shares.
		"secs": func(v any) string {
			f, _ := v.(float64)
			return humanDuration(time.Duration(f * float64(time.Second)))
		},
		"pct": func(v any) string {
			f, _ := v.(float64)
			if p, ok := v.(*float64); ok && p != nil {
				f = *p
			}
			return fmt.Sprintf("%.0f%%", f*100)
		},
		"since": func(now, t time.Time) string { return humanDuration(now.Sub(t)) },
		// safeHTML marks a message's HTML as safe: it was sanitised when
		// the message was stored (channel/email/parse), and the page's
		// CSP runs no inline script whatever it holds.
		"safeHTML": func(s string) template.HTML { return template.HTML(s) },
		"hasFold":  func(s string) bool { return strings.Contains(s, `data-sb-fold=`) },
		"isImage":  func(ct string) bool { return strings.HasPrefix(ct, "image/") },
		"isAudio":  func(ct string) bool { return strings.HasPrefix(ct, "audio/") },
		"bytes":    humanBytes,
		"count": func(n int) string {
			if n >= inbox.CountCap {
				return fmt.Sprintf("%d+", inbox.CountCap)
			}
			return fmt.Sprint(n)
		},
		"identity": func(k switchboard.IdentityKind, v string) string {
			if k == switchboard.IdentityPhone {
				return identity.FormatPhone(v)
			}
			return v
		},
	}
}

// humanDuration is a waiting time at a glance: "45 s", "12 min", "3 h", "2 d".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}
