package livechat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// Run hands the events of a bus subscription to this instance's visitor
// sockets until the subscription closes, and keeps the widgets' status
// up to date until ctx ends. Every instance runs it: whichever instance
// stored a message or sent a reply, the visitor's socket is on one of
// them.
//
//   - message.created of a visitor's own message: the echo, with its
//     client_id, and a "delivered" receipt;
//   - message.updated of a visitor's message now read: a "read" receipt;
//   - visitor.message (an agent's reply, sent by the live-chat sender):
//     the message, marked delivered once written;
//   - presence with agents typing in the visitor's conversation: typing;
//   - agent.status: the status is computed again.
//
// It also sends every socket its heartbeat.
func (h *Handler) Run(ctx context.Context, evs <-chan switchboard.BusEvent) {
	go h.runStatus(ctx)
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return
			}
			h.forward(ev)
		case <-tick.C:
			h.mu.Lock()
			for _, set := range h.sockets {
				for s := range set {
					s.q.Push(outFrame{ping: true}) // a full queue needs no ping
				}
			}
			h.mu.Unlock()
		}
	}
}

// socketsOf returns the sockets of the visitors named.
func (h *Handler) socketsOf(visitors ...string) []*socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*socket
	for _, v := range visitors {
		for s := range h.sockets[v] {
			out = append(out, s)
		}
	}
	return out
}

func (h *Handler) forward(ev switchboard.BusEvent) {
	switch ev.Type {
	case switchboard.BusMessageCreated, switchboard.BusMessageUpdated:
		h.mu.Lock()
		none := len(h.sockets) == 0
		h.mu.Unlock()
		if none {
			return // no visitor connected: every message event is decoded otherwise
		}
		var m view.Message
		if json.Unmarshal(ev.Data, &m) != nil || m.Channel != switchboard.ChannelLivechat || m.Direction != switchboard.DirectionIn {
			return
		}
		visitor, ok := view.ChatVisitorOf(m.ProviderID)
		if !ok {
			return
		}
		socks := h.socketsOf(visitor)
		if len(socks) == 0 {
			return
		}
		cm, _ := view.NewChatMessage(m, "")
		for _, s := range socks {
			if ev.Type == switchboard.BusMessageCreated {
				s.setConversation(m.ConversationID)
				s.queue(messageFrame(cm), "")
				s.queue(receiptFrame(m.ID, switchboard.DeliveryDelivered), "")
			} else if m.Status == switchboard.DeliveryRead {
				s.queue(receiptFrame(m.ID, switchboard.DeliveryRead), "")
			}
		}
	case switchboard.BusVisitorMessage:
		var cm view.ChatMessage
		if json.Unmarshal(ev.Data, &cm) != nil {
			return
		}
		for _, s := range h.socketsOf(ev.Visitors...) {
			s.setConversation(cm.ConversationID)
			s.queue(messageFrame(cm), cm.ID)
		}
	case switchboard.BusPresence:
		var p view.Presence
		if json.Unmarshal(ev.Data, &p) != nil || len(p.Typing) == 0 {
			return
		}
		h.mu.Lock()
		var socks []*socket
		for _, set := range h.sockets {
			for s := range set {
				if s.conversationID() == ev.ConversationID {
					socks = append(socks, s)
				}
			}
		}
		h.mu.Unlock()
		for _, s := range socks {
			s.queue(map[string]any{"type": "typing", "agent": view.ChatAgent{Name: p.Typing[0].Name}}, "")
		}
	case switchboard.BusAgentStatus:
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// runStatus computes the status of every site with visitors here every
// StatusEvery, and at once after an agent's status changed, and sends it
// to the site's visitors when it changed.
func (h *Handler) runStatus(ctx context.Context) {
	t := time.NewTicker(h.cfg.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
		h.refreshStatus(ctx)
	}
}

func (h *Handler) refreshStatus(ctx context.Context) {
	h.mu.Lock()
	sites := map[string]switchboard.Site{}
	for _, set := range h.sockets {
		for s := range set {
			sites[s.site.Key] = s.site
		}
	}
	h.mu.Unlock()
	for key, site := range sites {
		st, err := h.cfg.Inbox.ChatStatus(ctx, site)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("livechat: status", "site", key, "err", err)
			}
			continue
		}
		h.mu.Lock()
		changed := h.statuses[key] != st
		h.statuses[key] = st
		var socks []*socket
		if changed {
			for _, set := range h.sockets {
				for s := range set {
					if s.site.Key == key {
						socks = append(socks, s)
					}
				}
			}
		}
		h.mu.Unlock()
		for _, s := range socks {
			s.queue(statusFrame{"status", st}, "")
		}
	}
}
