// Package dispatch runs the routing rules of package route against the
// store: it walks the queue of waiting conversations, decides for each,
// assigns under the agents' caps safely beside other workers and other
// instances, and writes every decision to the conversation's events.
//
// Caps are enforced in the database (store.AssignRouted locks the agent and
// counts inside the transaction); the dispatcher's in-memory snapshot of
// agents only spares it from deciding blindly.
//
// Its work per stored message is constant, whatever the queue's length
// (docs/benchmarks.md): ingest hands it the conversations a batch touched
// (OnStored), and only those are decided. The queue is walked from its head
// when capacity may have freed (Wake: after a status change, an assignment
// change or an agent's status change, and every Poll for other instances'
// changes), and only while some online agent has room; the whole queue is
// read at the start (what a crash left undecided) and when a team's
// business hours open or close (acknowledgements, hand-offs back).
//
// Presence (Connected, Disconnected) is kept in memory per instance: with
// several instances an agent connected to another one looks disconnected
// here. Shared presence comes with the realtime hub's Redis work; until
// then run presence on one instance, or leave PresenceGrace at zero.
package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/view"
)

// Inbox is the service the dispatcher reads the queue from and makes its
// changes through (package inbox implements it): an assignment, a return
// to the queue or an agent's status set by presence is announced there
// like any other change.
type Inbox interface {
	RoutingAgents(ctx context.Context) ([]route.AgentState, error)
	WaitingConversations(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error)
	// WaitingInClass is WaitingConversations for one channel class.
	WaitingInClass(ctx context.Context, c switchboard.ChannelClass, after *route.QueueCursor, limit int) ([]route.Waiting, error)
	// WaitingByIDs returns those of the conversations that wait, in queue
	// order.
	WaitingByIDs(ctx context.Context, ids []string) ([]route.Waiting, error)
	FillWaiting(ctx context.Context, ws []route.Waiting, since time.Time) error
	StoredRoutingConfig(ctx context.Context) (route.StoredConfig, error)
	LatestClassifierID(ctx context.Context) (string, error)
	LoadClassifier(ctx context.Context) (route.StoredModel, error)
	AssignRouted(ctx context.Context, a route.Assignment) error
	RecordWaiting(ctx context.Context, d route.WaitDecision) (bool, error)
	SetRoutedTeam(ctx context.Context, conversationID, routed string, path []string, rule, reason string) (bool, error)
	ClaimAck(ctx context.Context, conversationID, period string) (route.AckClaim, error)
	RecordAck(ctx context.Context, c route.AckClaim, ch switchboard.Channel, text, skipped string) error
	ReleaseAck(ctx context.Context, c route.AckClaim) error
	ReturnAbsent(ctx context.Context, grace time.Duration) ([]route.Returned, error)
	NoteContinuity(ctx context.Context, conversationID string, ch switchboard.Channel) (bool, string, error)
	GetAgent(ctx context.Context, id string) (switchboard.Agent, error)
	SetAgentStatus(ctx context.Context, actor switchboard.Actor, id string, status switchboard.AgentStatus) (view.Agent, error)
	// SendAutomatic queues a message Switchboard sends on its own, under
	// the channel's policy: an EPOLICY error says the channel cannot
	// carry it now (an SMS opt-out, a closed WhatsApp window, no sender).
	SendAutomatic(ctx context.Context, conversationID string, ch switchboard.Channel, text string) (view.Message, error)
}

// Dispatcher assigns waiting conversations. Set the fields before Run; the
// zero values of the tunables take the defaults shown.
type Dispatcher struct {
	Inbox  Inbox
	Logger *slog.Logger
	Clock  switchboard.Clock // the inbox's clock should agree
	// NoAcks turns the after-hours acknowledgement off.
	NoAcks bool

	Poll             time.Duration // periodic pass (1s)
	OfflineGrace     time.Duration // away/offline this long returns an agent's chats to the queue (5m)
	PresenceGrace    time.Duration // no socket this long makes an online agent away (0: presence off)
	ContinuityWindow time.Duration // a customer's agent is the one who resolved them within this (30 days)
	Batch            int           // conversations read from the queue at a time (500)

	wakeOnce sync.Once
	wake     chan struct{}

	workMu  sync.Mutex
	pending map[string]struct{} // conversations stored into since the last pass
	head    bool                // capacity may have freed: walk the queue's head
	periods string              // the teams' business-hours periods at the last whole pass
	walked  *route.Router       // the configuration of the last whole pass
	// idle is, per class, the room the last head pass left unused (no
	// conversation of the class could take it): a periodic pass reads
	// the queue again only for more room than that.
	idle map[switchboard.ChannelClass]int

	cfgMu    sync.Mutex
	router   *route.Router
	cfgRaw   []byte // the configuration the router was built from
	modelID  string
	presence presence

	// observe, when set, is called with the time each decision took
	// (deciding and, for an assignment, assigning): the benchmark uses it.
	observe func(time.Duration)
}

func (d *Dispatcher) init() {
	d.wakeOnce.Do(func() { d.wake = make(chan struct{}, 1) })
}

func (d *Dispatcher) now() time.Time {
	if d.Clock == nil {
		return time.Now().UTC()
	}
	return d.Clock.Now()
}

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.Default()
	}
	return d.Logger
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Wake asks Run to walk the queue's head now: capacity may have freed. It
// never blocks: wakes while a pass is pending are folded into it.
func (d *Dispatcher) Wake() {
	d.workMu.Lock()
	d.head = true
	d.workMu.Unlock()
	d.signal()
}

// Changed is the inbox's routing hook (inbox.Service.OnRoutingChange):
// capacity may have freed, and the conversations named may wait now.
func (d *Dispatcher) Changed(conversationIDs ...string) {
	d.workMu.Lock()
	d.head = true
	d.addPending(conversationIDs...)
	d.workMu.Unlock()
	d.signal()
}

// addPending notes conversations to decide at the next pass; workMu held.
func (d *Dispatcher) addPending(ids ...string) {
	if d.pending == nil {
		d.pending = map[string]struct{}{}
	}
	for _, id := range ids {
		if id != "" {
			d.pending[id] = struct{}{}
		}
	}
}

func (d *Dispatcher) signal() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take returns and clears the work asked for since the last pass.
func (d *Dispatcher) take() (pending []string, head bool) {
	d.workMu.Lock()
	defer d.workMu.Unlock()
	for id := range d.pending {
		pending = append(pending, id)
	}
	clear(d.pending)
	head, d.head = d.head, false
	return pending, head
}

// Run makes passes until ctx ends: at each Wake and stored batch, and every
// Poll. A pass first handles presence and agents away past the grace
// period, then decides what changed: the conversations stored into, and
// the queue's head while an agent has room; the whole queue at the start
// and when a team's hours open or close. Errors are logged and the next
// pass tries again.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.init()
	t := time.NewTicker(orDefault(d.Poll, time.Second))
	defer t.Stop()
	whole, tick := true, false
	for {
		if err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
			d.logger().Warn("dispatch: sweep", "err", err)
		}
		if !whole {
			changed, err := d.periodsChanged(ctx)
			if err != nil && ctx.Err() == nil {
				d.logger().Warn("dispatch: business hours", "err", err)
			}
			whole = changed
		}
		pending, head := d.take()
		var err error
		switch {
		case whole:
			// The whole queue holds the stored conversations too.
			if _, _, err = d.RouteOnce(ctx); err == nil {
				whole = false
			}
		default:
			if len(pending) > 0 {
				_, _, err = d.RouteConversations(ctx, pending)
			}
			if err == nil && (head || tick) {
				_, _, err = d.walk(ctx, true, !head)
			}
		}
		if err != nil && ctx.Err() == nil {
			d.logger().Warn("dispatch: route", "err", err)
			d.workMu.Lock()
			d.head = true // try again at the next pass
			d.workMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
			tick = false
		case <-t.C:
			tick = true
		}
	}
}

// periodsChanged reports whether a team's business hours opened or
// closed, or the configuration changed, since the last whole pass (which
// records them).
func (d *Dispatcher) periodsChanged(ctx context.Context) (bool, error) {
	router, err := d.loadRouter(ctx)
	if err != nil {
		return false, err
	}
	p := periods(router, d.now())
	d.workMu.Lock()
	defer d.workMu.Unlock()
	return p != d.periods || router != d.walked, nil
}

// periods names, for every team with hours, whether it is open now and
// the period it is in.
func periods(r *route.Router, now time.Time) string {
	var b []byte
	teams := make([]string, 0, len(r.Teams))
	for team, tc := range r.Teams {
		if tc.Hours != nil {
			teams = append(teams, team)
		}
	}
	slices.Sort(teams)
	for _, team := range teams {
		h := r.Teams[team].Hours
		b = append(b, team...)
		if h.Open(now) {
			b = append(b, "=open;"...)
		} else {
			b = append(b, "="+period(h, now)+";"...)
		}
	}
	return string(b)
}

// Sweep applies presence (agents without a socket past PresenceGrace
// become away, and back online when they reconnect) and returns to the
// queue the chat-like conversations of agents away or offline for longer
// than OfflineGrace.
func (d *Dispatcher) Sweep(ctx context.Context) error {
	err := d.applyPresence(ctx)
	returned, rerr := d.Inbox.ReturnAbsent(ctx, orDefault(d.OfflineGrace, 5*time.Minute))
	if len(returned) > 0 {
		d.logger().Info("dispatch: conversations returned to the queue", "count", len(returned))
		d.workMu.Lock()
		for _, r := range returned {
			d.addPending(r.ConversationID)
		}
		d.workMu.Unlock()
	}
	return errors.Join(err, rerr)
}

// OnStored takes what ingest stored (the pipeline's OnStored hook, items
// and results in the same order): a message that came on a new channel
// into a conversation already assigned to an online agent stays with them,
// which is written to the events (rule continuity); then a pass is asked
// for, to route new conversations.
func (d *Dispatcher) OnStored(ctx context.Context, items []switchboard.Inbound, results []switchboard.IngestResult) {
	d.workMu.Lock()
	for _, r := range results {
		if r.Stored() {
			d.addPending(r.ConversationID)
		}
	}
	d.workMu.Unlock()
	for i, r := range results {
		if r.Err != nil || r.Duplicate || r.SwitchedFrom == "" || r.ConversationID == "" || i >= len(items) {
			continue
		}
		if _, _, err := d.Inbox.NoteContinuity(ctx, r.ConversationID, items[i].Channel); err != nil {
			d.logger().Warn("dispatch: continuity", "conversation", r.ConversationID, "err", err)
		}
	}
	d.signal()
}

// loadRouter returns the router built from the stored configuration and
// the newest classifier, rebuilding it only when either changed.
func (d *Dispatcher) loadRouter(ctx context.Context) (*route.Router, error) {
	cfg, err := d.Inbox.StoredRoutingConfig(ctx)
	if err != nil {
		return nil, err
	}
	modelID, err := d.Inbox.LatestClassifierID(ctx)
	if err != nil {
		return nil, err
	}
	raw := configKey(cfg)
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	if d.router != nil && modelID == d.modelID && bytes.Equal(raw, d.cfgRaw) {
		return d.router, nil
	}
	r := &route.Router{Teams: map[string]route.TeamConfig{}}
	for team, b := range cfg.Teams {
		var tc route.TeamConfig
		if err := jsonUnmarshal(b, &tc); err != nil {
			d.logger().Error("dispatch: team configuration ignored", "team", team, "err", err)
			continue
		}
		if err := tc.Validate(); err != nil {
			d.logger().Error("dispatch: team configuration ignored", "team", team, "err", err)
			continue
		}
		r.Teams[team] = tc
	}
	topics := &route.Topics{}
	if len(cfg.Keywords) > 0 {
		if err := jsonUnmarshal(cfg.Keywords, &topics.Keywords); err != nil {
			d.logger().Error("dispatch: keyword rules ignored", "err", err)
		}
	}
	if modelID != "" {
		m, err := d.Inbox.LoadClassifier(ctx)
		if err != nil {
			return nil, err
		}
		c := &route.Classifier{}
		if err := c.UnmarshalBinary(m.Model); err != nil {
			d.logger().Error("dispatch: classifier ignored", "id", m.ID, "err", err)
		} else {
			topics.Classifier = c
		}
		modelID = m.ID
	}
	if len(topics.Keywords) > 0 || topics.Classifier != nil {
		r.Topics = topics
	}
	d.router, d.cfgRaw, d.modelID = r, raw, modelID
	return r, nil
}

// snapshot is the agents as one pass sees them, updated in memory after
// each assignment.
type snapshot struct {
	agents []route.Agent
	index  map[string]int
	room   map[switchboard.ChannelClass]int // online agents with room, per class
}

func (d *Dispatcher) loadSnapshot(ctx context.Context) (*snapshot, error) {
	ras, err := d.Inbox.RoutingAgents(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot{agents: make([]route.Agent, len(ras)), index: make(map[string]int, len(ras)), room: map[switchboard.ChannelClass]int{}}
	for i, a := range ras {
		idle := a.LastRoutedAt
		if a.Status == switchboard.AgentOnline && a.StatusChangedAt.After(idle) {
			idle = a.StatusChangedAt
		}
		s.agents[i] = route.Agent{
			ID: a.ID, Name: a.Name, Status: a.Status, Skills: route.ParseSkills(a.Skills), Teams: a.Teams,
			Caps:      map[switchboard.ChannelClass]int{switchboard.ClassChat: a.CapChat, switchboard.ClassEmail: a.CapEmail},
			Active:    a.Active,
			IdleSince: idle,
		}
		s.index[a.ID] = i
		for _, c := range []switchboard.ChannelClass{switchboard.ClassChat, switchboard.ClassEmail} {
			if a.Status == switchboard.AgentOnline && route.Fits(s.agents[i], c) {
				s.room[c]++
			}
		}
	}
	return s, nil
}

// assigned records an assignment in the snapshot.
func (s *snapshot) assigned(id string, c switchboard.ChannelClass, now time.Time) {
	i, ok := s.index[id]
	if !ok {
		return
	}
	a := &s.agents[i]
	a.Active[c]++
	a.IdleSince = now
	if !route.Fits(*a, c) {
		s.room[c]--
	}
}

// without returns the agents minus the excluded ones (a copy only when
// there is something to leave out).
func (s *snapshot) without(excluded []string) []route.Agent {
	if len(excluded) == 0 {
		return s.agents
	}
	out := make([]route.Agent, 0, len(s.agents))
	for _, a := range s.agents {
		if !slices.Contains(excluded, a.ID) {
			out = append(out, a)
		}
	}
	return out
}

// RouteOnce makes one pass over the queue, oldest first within each
// priority, and returns how many conversations it assigned and how many it
// left waiting.
//
// It reads the agents once and keeps their counts in memory as it assigns.
// When no online agent has room for a channel class, conversations of that
// class that already carry a waiting reason are skipped without deciding
// (unless their team is closed and they still need an acknowledgement);
// only a failed (raced) assignment reads the agents again.
func (d *Dispatcher) RouteOnce(ctx context.Context) (assigned, waiting int, err error) {
	return d.walk(ctx, false, false)
}

// RouteHead walks the queue from its head while some online agent has
// room for a class, deciding only the conversations of a class with room:
// with nobody's room free it reads nothing.
func (d *Dispatcher) RouteHead(ctx context.Context) (assigned, waiting int, err error) {
	return d.walk(ctx, true, false)
}

// RouteConversations decides the given conversations that wait (those a
// stored batch touched): its cost is theirs, whatever the queue's length.
// They are decided in queue order, a part at a time: after a burst the
// pending set can hold tens of thousands, and filling them all in at once
// held all their texts in memory.
func (d *Dispatcher) RouteConversations(ctx context.Context, ids []string) (assigned, waiting int, err error) {
	router, err := d.loadRouter(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: load configuration: %w", err)
	}
	ws, err := d.Inbox.WaitingByIDs(ctx, ids)
	if err != nil || len(ws) == 0 {
		return 0, 0, err
	}
	snap, err := d.loadSnapshot(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: load agents: %w", err)
	}
	for len(ws) > 0 {
		part := ws[:min(len(ws), fillPerRead)]
		ws = ws[len(part):]
		now := d.now()
		if err := d.Inbox.FillWaiting(ctx, part, now.Add(-orDefault(d.ContinuityWindow, 30*24*time.Hour))); err != nil {
			return assigned, waiting, fmt.Errorf("dispatch: read conversations: %w", err)
		}
		a, w, err := d.placeAll(ctx, router, &snap, part, now)
		assigned, waiting = assigned+a, waiting+w
		if err != nil {
			return assigned, waiting, err
		}
		clear(part) // their texts are no longer needed
	}
	return assigned, waiting, nil
}

// fillPerRead is how many waiting conversations RouteConversations fills
// in (texts, exclusions, continuity) and decides at once.
const fillPerRead = 500

// placeAll decides each conversation of ws, in order, and counts how many
// were assigned and how many left waiting.
func (d *Dispatcher) placeAll(ctx context.Context, router *route.Router, snap **snapshot, ws []route.Waiting, now time.Time) (assigned, waiting int, err error) {
	for _, w := range ws {
		if err := ctx.Err(); err != nil {
			return assigned, waiting, err
		}
		ok, err := d.place(ctx, router, snap, w, now)
		if err != nil {
			return assigned, waiting, err
		}
		if ok {
			assigned++
		} else {
			waiting++
		}
	}
	return assigned, waiting, nil
}

// walk passes over the queue in the order it is served: the whole of it,
// or (headOnly) its head for each class an agent has room for; and for
// a periodic pass (tick), only for more room than the last pass left
// unused.
func (d *Dispatcher) walk(ctx context.Context, headOnly, tick bool) (assigned, waiting int, err error) {
	router, err := d.loadRouter(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: load configuration: %w", err)
	}
	snap, err := d.loadSnapshot(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: load agents: %w", err)
	}
	if !headOnly {
		p := periods(router, d.now())
		d.workMu.Lock()
		d.periods, d.walked = p, router
		d.workMu.Unlock()
		return d.pages(ctx, router, &snap, "", d.Inbox.WaitingConversations)
	}
	// The head, per class: only the classes some online agent has room
	// for, and each only until that room is taken.
	for _, c := range []switchboard.ChannelClass{switchboard.ClassChat, switchboard.ClassEmail} {
		d.workMu.Lock()
		unused := d.idle[c]
		d.workMu.Unlock()
		if snap.room[c] <= 0 || tick && snap.room[c] <= unused {
			continue
		}
		a, w, err := d.pages(ctx, router, &snap, c, func(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
			return d.Inbox.WaitingInClass(ctx, c, after, limit)
		})
		assigned, waiting = assigned+a, waiting+w
		if err != nil {
			return assigned, waiting, err
		}
		d.workMu.Lock()
		if d.idle == nil {
			d.idle = map[switchboard.ChannelClass]int{}
		}
		d.idle[c] = snap.room[c] // what is left had nobody to take it
		d.workMu.Unlock()
	}
	return assigned, waiting, nil
}

// pages decides the conversations read reads, page by page. With a class
// it stops when no agent has room for it any more.
func (d *Dispatcher) pages(ctx context.Context, router *route.Router, snap **snapshot, class switchboard.ChannelClass, read func(context.Context, *route.QueueCursor, int) ([]route.Waiting, error)) (assigned, waiting int, err error) {
	batch := d.Batch
	if batch <= 0 {
		batch = 500
	}
	window := orDefault(d.ContinuityWindow, 30*24*time.Hour)
	var cursor *route.QueueCursor
	for {
		if class != "" && (*snap).room[class] <= 0 {
			return assigned, waiting, nil
		}
		page, err := read(ctx, cursor, batch)
		if err != nil {
			return assigned, waiting, fmt.Errorf("dispatch: read queue: %w", err)
		}
		if len(page) == 0 {
			return assigned, waiting, nil
		}
		cursor = page[len(page)-1].Cursor()
		now := d.now()
		// Leave out, before reading anything more, what cannot change.
		todo := page[:0:0]
		for _, w := range page {
			if (*snap).room[w.LastChannel.Class()] <= 0 && w.WaitReason != "" && !d.needsAck(router, w, now) && !comesBack(router, w, now) {
				waiting++
				continue
			}
			todo = append(todo, w)
		}
		if err := d.Inbox.FillWaiting(ctx, todo, now.Add(-window)); err != nil {
			return assigned, waiting, fmt.Errorf("dispatch: read queue: %w", err)
		}
		a, w, err := d.placeAll(ctx, router, snap, todo, now)
		assigned, waiting = assigned+a, waiting+w
		if err != nil {
			return assigned, waiting, err
		}
		if len(page) < batch {
			return assigned, waiting, nil
		}
	}
}

// needsAck reports whether w waits in a closed team (its own or the
// after-hours team it was handed to) with a customer message that no
// acknowledgement answered yet: then it must be decided even when no agent
// has room.
func (d *Dispatcher) needsAck(r *route.Router, w route.Waiting, now time.Time) bool {
	team := w.Team
	if w.RoutedTeam != "" {
		team = w.RoutedTeam
	}
	tc := r.Teams[team]
	if tc.Hours == nil || tc.Hours.Open(now) {
		return false
	}
	return ackDue(w)
}

// comesBack reports whether w was handed to an after-hours team and its
// own team is open again: it must be decided, to return, even when no
// agent has room.
func comesBack(r *route.Router, w route.Waiting, now time.Time) bool {
	if w.RoutedTeam == "" {
		return false
	}
	h := r.Teams[w.Team].Hours
	return h == nil || h.Open(now)
}

// ackDue reports whether w has a message an acknowledgement should answer:
// it is open (pending and snoozed ones wait on purpose) and its newest
// inbound message is newer than the one the last acknowledgement answered.
// ClaimAck decides for good; this spares it the calls.
func ackDue(w route.Waiting) bool {
	return w.Status == switchboard.StatusOpen && w.LastInboundAt.After(w.AckedInboundAt)
}

// period names the closed period containing now by when it ends.
func period(h *route.Schedule, now time.Time) string {
	next := h.NextOpen(now)
	if next.IsZero() {
		return "closed"
	}
	return next.UTC().Format(time.RFC3339)
}

// maxTries bounds how often one conversation is decided again in a pass
// after losing a race.
const maxTries = 3

// decideTeams decides for req in its own team and follows after-hours
// hand-offs, each team at most once: a hand-off back to a team already
// passed (a cycle in a configuration stored before cycles were refused)
// ends in a wait in the last team reached, saying so. It returns the
// decision, the team that made it and the teams passed, req's first.
func decideTeams(router *route.Router, req route.Request, agents []route.Agent) (route.Decision, []string) {
	path := []string{req.Team}
	for {
		dec := router.Decide(req, agents)
		if dec.Outcome != route.Handoff {
			return dec, path
		}
		if slices.Contains(path, dec.Team) {
			reason := "after-hours hand-offs go round in a cycle (" + route.HandoffPath(append(slices.Clip(path), dec.Team)) + "): waiting in team " + route.HandoffPath(path[len(path)-1:])
			dec.Outcome, dec.Team, dec.AfterHours, dec.Reason = route.Wait, "", true, reason
			dec.Trace = append(dec.Trace, route.Step{Rule: dec.Rule, Reason: reason})
			return dec, path
		}
		path = append(path, dec.Team)
		req.Team = dec.Team
	}
}

// settleTeam records, when it changed, the team w is routed in: the last
// of path (the after-hours team it was handed to), or its own team again.
func (d *Dispatcher) settleTeam(ctx context.Context, w *route.Waiting, path []string, dec route.Decision) {
	routed := ""
	if len(path) > 1 {
		routed = path[len(path)-1]
	}
	if routed == w.RoutedTeam {
		return
	}
	var reason string
	if routed != "" {
		reason = "outside business hours: handed to team " + route.HandoffPath(path[len(path)-1:])
		if len(path) > 2 {
			reason = "outside business hours: handed on along " + route.HandoffPath(path)
		}
	} else {
		reason = "back to team " + route.HandoffPath(path[:1]) + " from team " + route.HandoffPath([]string{w.RoutedTeam})
		for _, st := range dec.Trace {
			if st.Rule == route.RuleBusinessHours {
				reason += ": " + st.Reason
				break
			}
		}
	}
	wrote, err := d.Inbox.SetRoutedTeam(ctx, w.ID, routed, path, route.RuleBusinessHours, reason)
	if err != nil {
		d.logger().Warn("dispatch: hand-off", "conversation", w.ID, "team", routed, "err", err)
		return
	}
	w.RoutedTeam = routed
	if wrote {
		w.WaitReason = "" // cleared with the team change
	}
}

// place decides for one conversation and carries the decision out. It
// reports whether the conversation was assigned.
//
// Every decision starts from the conversation's own team: a hand-off to
// the after-hours team holds only while the own team is closed, so the
// conversation is back with its team when it opens.
func (d *Dispatcher) place(ctx context.Context, router *route.Router, snap **snapshot, w route.Waiting, now time.Time) (bool, error) {
	start := time.Now()
	if d.observe != nil {
		defer func() { d.observe(time.Since(start)) }()
	}
	req := route.Request{ConversationID: w.ID, Channel: w.LastChannel, Team: w.Team, Topic: w.Topic, Text: w.Text, ContinuityAgent: w.ContinuityAgent, Now: now}
	class := w.LastChannel.Class()
	excluded := w.Excluded
	for try := 0; ; try++ {
		dec, path := decideTeams(router, req, (*snap).without(excluded))
		if try == 0 {
			d.settleTeam(ctx, &w, path, dec)
		}
		if dec.Outcome != route.Assign {
			return false, d.wait(ctx, router, w, path[len(path)-1], dec, now)
		}
		topic := dec.Topic
		if w.Topic != "" {
			topic = "" // known already: nothing to save
		}
		err := d.Inbox.AssignRouted(ctx, route.Assignment{
			ConversationID: w.ID, AgentID: dec.AgentID, Rule: dec.Rule, Reason: dec.Reason, Trace: dec.Trace,
			Topic: topic, TopicSource: dec.TopicSource,
		})
		switch {
		case err == nil:
			(*snap).assigned(dec.AgentID, class, now)
			return true, nil
		case errors.Is(err, route.ErrNotWaiting):
			return false, nil // someone else has it, or it is gone
		case errors.Is(err, route.ErrExcluded):
			excluded = append(slices.Clip(excluded), dec.AgentID)
		case errors.Is(err, route.ErrAgentFull), errors.Is(err, route.ErrAgentUnavailable):
			// Another worker or a person changed the agent: read them again.
			fresh, err := d.loadSnapshot(ctx)
			if err != nil {
				return false, fmt.Errorf("dispatch: reload agents: %w", err)
			}
			*snap = fresh
		default:
			return false, fmt.Errorf("dispatch: assign %s: %w", w.ID, err)
		}
		if try >= maxTries {
			return false, nil // the next pass tries again
		}
	}
}

// wait records a waiting decision when its reason changed, and sends the
// after-hours acknowledgement when one is due: at most one per closed
// period of team (the team that decided), and only for a customer message
// no acknowledgement answered yet.
func (d *Dispatcher) wait(ctx context.Context, router *route.Router, w route.Waiting, team string, dec route.Decision, now time.Time) error {
	wd := route.WaitDecision{ConversationID: w.ID, Rule: dec.Rule, Reason: dec.Reason, Trace: dec.Trace, AfterHours: dec.AfterHours}
	if w.Topic == "" && dec.Topic != "" {
		wd.Topic, wd.TopicSource = dec.Topic, dec.TopicSource
	}
	if wd.WaitKey() != w.WaitReason || wd.Topic != "" {
		if _, err := d.Inbox.RecordWaiting(ctx, wd); err != nil {
			return fmt.Errorf("dispatch: record waiting: %w", err)
		}
	}
	if !dec.AfterHours || d.NoAcks || !ackDue(w) {
		return nil
	}
	tc := router.Teams[team]
	if tc.Hours == nil {
		return nil
	}
	claim, err := d.Inbox.ClaimAck(ctx, w.ID, period(tc.Hours, now))
	if err != nil || !claim.Send {
		return err
	}
	return d.acknowledge(ctx, claim, w.LastChannel, tc.AckText(w.LastChannel, tc.Hours.NextOpen(now)))
}

// acknowledge sends the after-hours acknowledgement a claim reserved,
// through the customer's channel and under its policy. Where the channel
// cannot carry it now (no sender, an SMS opt-out, a closed WhatsApp
// window) it is skipped, never forced, and recorded as skipped with the
// reason, so it is not tried again for the same message; any other
// failure gives the claim back for a later pass.
func (d *Dispatcher) acknowledge(ctx context.Context, claim route.AckClaim, ch switchboard.Channel, text string) error {
	_, err := d.Inbox.SendAutomatic(ctx, claim.ConversationID, ch, text)
	switch {
	case err == nil:
		return d.Inbox.RecordAck(ctx, claim, ch, text, "")
	case switchboard.ErrorCode(err) == switchboard.EPOLICY:
		reason := switchboard.ErrorMessage(err)
		d.logger().Info("dispatch: acknowledgement skipped", "conversation", claim.ConversationID, "channel", ch, "reason", reason)
		return d.Inbox.RecordAck(ctx, claim, ch, text, reason)
	}
	d.logger().Warn("dispatch: acknowledgement not sent", "conversation", claim.ConversationID, "channel", ch, "err", err)
	return d.Inbox.ReleaseAck(ctx, claim)
}
