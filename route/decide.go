package route

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// decision is the state one Decide call threads through the rules. The
// candidates are never copied: they are the agents for which candidate
// returns true, so Decide stays O(agents × rules) without allocating per
// agent.
type decision struct {
	r      *Router
	cfg    *TeamConfig
	req    *Request
	agents []Agent
	class  switchboard.ChannelClass
	avail  bool   // availability has narrowed the candidates
	skill  string // candidates must have this skill ("" = any)
	n      int    // number of candidates, kept by the rules that narrow
	wChat  float64
	wEmail float64
	d      Decision
}

// available reports whether a can take this conversation at all: online,
// serving the team, and with room under its cap for the class.
func (s *decision) available(a *Agent) bool {
	return a.Status == switchboard.AgentOnline && a.inTeam(s.req.Team) && a.fits(s.class)
}

func (s *decision) candidate(a *Agent) bool {
	if s.avail && !s.available(a) {
		return false
	}
	if !s.avail && !a.inTeam(s.req.Team) {
		return false
	}
	return s.skill == "" || a.Skills[s.skill] > 0
}

func (s *decision) step(rule, reason string) {
	s.d.Trace = append(s.d.Trace, Step{Rule: rule, Reason: reason, Candidates: s.n})
}

// load is TeamConfig.load with the two usual weights looked up once.
func (s *decision) load(a *Agent) float64 {
	if len(a.Active) > 2 {
		return s.cfg.load(a) // classes beyond chat and email
	}
	return float64(a.Active[switchboard.ClassChat])*s.wChat + float64(a.Active[switchboard.ClassEmail])*s.wEmail
}

// decide ends the pipeline with outcome o.
func (s *decision) decide(o Outcome, rule, reason string) {
	s.d.Outcome, s.d.Rule, s.d.Reason = o, rule, reason
	n := 0
	if o == Assign {
		n = 1
	}
	s.d.Trace = append(s.d.Trace, Step{Rule: rule, Reason: reason, Candidates: n})
}

// Decide runs the team's rules for req over agents and returns the
// decision with its trace. It never fails: a configuration it cannot use
// (unknown rule names) is skipped and said so in the trace.
func (r *Router) Decide(req Request, agents []Agent) Decision {
	cfg := r.config(req.Team)
	s := decision{r: r, cfg: &cfg, req: &req, agents: agents, class: req.Channel.Class(),
		wChat: cfg.weight(switchboard.ClassChat), wEmail: cfg.weight(switchboard.ClassEmail)}
	for i := range agents {
		if agents[i].inTeam(req.Team) {
			s.n++
		}
	}
	var buf [maxRules]string
	rules := normRules(cfg.Rules, &buf)
	s.d.Trace = make([]Step, 0, len(rules))
	s.detectTopic()
	for _, rule := range rules {
		var done bool
		switch rule {
		case RuleContinuity:
			done = s.continuity()
		case RuleBusinessHours:
			done = s.businessHours()
		case RuleAvailability:
			done = s.availability()
		case RuleSkills:
			done = s.skills()
		case RuleWorkload:
			done = s.workload()
		default:
			s.step(rule, "unknown rule: skipped")
		}
		if done {
			return s.d
		}
	}
	// normRules ends with workload, which always decides; keep a safe
	// answer anyway.
	s.decide(Wait, RuleWorkload, "no rule decided: waiting")
	return s.d
}

// detectTopic fills the decision's topic: a known topic is kept, else the
// customer's text is classified. It runs even when an earlier rule decides,
// so the conversation's topic is recorded for reports either way.
func (s *decision) detectTopic() {
	if t := strings.TrimSpace(s.req.Topic); t != "" {
		s.d.Topic, s.d.TopicSource = strings.ToLower(t), "kept"
		return
	}
	if s.r.Topics == nil || s.req.Text == "" {
		return
	}
	s.d.Topic, s.d.TopicSource, s.d.Confidence = s.r.Topics.Detect(s.req.Text)
}

func (s *decision) find(id string) *Agent {
	for i := range s.agents {
		if s.agents[i].ID == id {
			return &s.agents[i]
		}
	}
	return nil
}

func name(a *Agent) string {
	if a.Name != "" {
		return a.Name
	}
	return a.ID
}

func (s *decision) continuity() bool {
	id := s.req.ContinuityAgent
	if id == "" {
		s.step(RuleContinuity, "no agent has this customer yet")
		return false
	}
	a := s.find(id)
	switch {
	case a == nil:
		s.step(RuleContinuity, "this customer's agent ("+id+") is not in the roster")
		return false
	case a.Status != switchboard.AgentOnline:
		status := a.Status
		if status == "" {
			status = switchboard.AgentOffline
		}
		s.step(RuleContinuity, name(a)+" has this customer but is "+string(status))
		return false
	case !a.fits(s.class):
		s.step(RuleContinuity, fmt.Sprintf("%s has this customer but is at the %s cap (%d of %d)", name(a), s.class, a.Active[s.class], a.Cap(s.class)))
		return false
	}
	// Continuity ignores team and hours on purpose: the agent is online,
	// so working, and already knows this customer (docs/design.md §5).
	s.d.AgentID = a.ID
	s.decide(Assign, RuleContinuity, "kept with "+name(a)+", who has this customer's open conversation")
	return true
}

func (s *decision) businessHours() bool {
	h := s.cfg.Hours
	if h == nil {
		s.step(RuleBusinessHours, "team "+teamName(s.req.Team)+" is always open")
		return false
	}
	if h.Open(s.req.Now) {
		s.step(RuleBusinessHours, "within business hours ("+h.Location().String()+")")
		return false
	}
	when := "no opening scheduled"
	if next := h.NextOpen(s.req.Now); !next.IsZero() {
		when = "opens " + next.In(h.Location()).Format("Mon 15:04")
		if next.Sub(s.req.Now) > 6*24*time.Hour {
			when = "opens " + next.In(h.Location()).Format("Mon 2 Jan 15:04")
		}
	}
	prefix := "outside business hours (" + h.Location().String() + ", " + when + "): "
	if s.cfg.AfterHours == AfterHoursTeam && s.cfg.AfterHoursTeam != "" && s.cfg.AfterHoursTeam != s.req.Team {
		s.d.Team = s.cfg.AfterHoursTeam
		s.decide(Handoff, RuleBusinessHours, prefix+"handing to team "+teamName(s.cfg.AfterHoursTeam))
		return true
	}
	s.d.AfterHours = true
	s.decide(Wait, RuleBusinessHours, prefix+"waiting")
	return true
}

func teamName(t string) string {
	if t == "" {
		return "default"
	}
	return t
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func (s *decision) availability() bool {
	var inTeam, online, away, capped, room int
	for i := range s.agents {
		a := &s.agents[i]
		if !a.inTeam(s.req.Team) {
			continue
		}
		inTeam++
		switch {
		case a.Status != switchboard.AgentOnline:
			if a.Status == switchboard.AgentAway {
				away++
			}
		case !a.fits(s.class):
			online++
			capped++
		default:
			online++
			room++
		}
	}
	s.avail = true
	s.n = room
	team := teamName(s.req.Team)
	switch {
	case inTeam == 0:
		s.decide(Wait, RuleAvailability, "no agents in team "+team+": waiting")
		return true
	case online == 0:
		s.decide(Wait, RuleAvailability, fmt.Sprintf("no agent of team %s is online (%d away, %d offline): waiting", team, away, inTeam-away))
		return true
	case room == 0:
		if online == 1 {
			s.decide(Wait, RuleAvailability, "the only online agent is at the "+string(s.class)+" cap: waiting")
		} else {
			s.decide(Wait, RuleAvailability, fmt.Sprintf("all %d online agents are at their %s cap: waiting", online, s.class))
		}
		return true
	}
	s.step(RuleAvailability, fmt.Sprintf("%d of %s in team %s online with room for %s", room, plural(inTeam, "agent", "agents"), team, article(s.class)))
	return false
}

// article returns "a chat", "an email".
func article(c switchboard.ChannelClass) string {
	if c != "" && strings.ContainsRune("aeiou", rune(c[0])) {
		return "an " + string(c)
	}
	return "a " + string(c)
}

func (s *decision) skills() bool {
	topic := s.d.Topic
	if topic == "" {
		s.step(RuleSkills, "topic unknown: any agent")
		return false
	}
	skilled := 0
	for i := range s.agents {
		a := &s.agents[i]
		if s.candidate(a) && a.Skills[topic] > 0 {
			skilled++
		}
	}
	how := "topic " + topic + " (" + s.d.TopicSource
	if s.d.TopicSource == "classifier" {
		how += fmt.Sprintf(", %.0f%%", s.d.Confidence*100)
	}
	how += ")"
	if skilled > 0 {
		s.skill, s.n = topic, skilled
		s.step(RuleSkills, fmt.Sprintf("%s: %s skilled in %s", how, plural(skilled, "agent", "agents"), topic))
		return false
	}
	if s.cfg.SkillFallback == FallbackWait {
		s.decide(Wait, RuleSkills, how+": no "+topic+" agent available: waiting")
		return true
	}
	s.step(RuleSkills, how+": no "+topic+" agent available, falling back to any agent")
	return false
}

// better reports whether a should be preferred over b: lower weighted load,
// then higher proficiency in the topic (a tie-breaker only, so the best
// agent is not buried under every conversation of the topic), then idle
// longer, then the smaller id so that equal inputs give equal answers.
func (s *decision) better(a *Agent, la float64, b *Agent, lb float64) bool {
	if d := la - lb; d < -loadEpsilon || d > loadEpsilon {
		return d < 0
	}
	if s.skill != "" {
		if pa, pb := a.Skills[s.skill], b.Skills[s.skill]; pa != pb {
			return pa > pb
		}
	}
	if !a.IdleSince.Equal(b.IdleSince) {
		return a.IdleSince.Before(b.IdleSince)
	}
	return a.ID < b.ID
}

// loadEpsilon absorbs floating-point noise in weighted loads.
const loadEpsilon = 1e-9

func (s *decision) workload() bool {
	var best *Agent
	var bestLoad float64
	n, ties := 0, 0 // ties: candidates as loaded as the best so far
	for i := range s.agents {
		a := &s.agents[i]
		if !s.candidate(a) {
			continue
		}
		n++
		l := s.load(a)
		if best != nil {
			if d := l - bestLoad; d > -loadEpsilon && d < loadEpsilon {
				ties++
			} else if d < 0 {
				ties = 0
			}
		}
		if best == nil || s.better(a, l, best, bestLoad) {
			best, bestLoad = a, l
		}
	}
	if best == nil {
		s.decide(Wait, RuleWorkload, "no agent qualifies: waiting")
		return true
	}
	var b strings.Builder
	b.WriteString("assigned to ")
	b.WriteString(name(best))
	b.WriteString(": ")
	b.WriteString(s.loadPhrase(best, n))
	if ties > 0 {
		fmt.Fprintf(&b, ", longest idle of %d equally loaded", ties+1)
		if s.skill != "" {
			b.WriteString(" (proficiency first)")
		}
	}
	if s.skill != "" {
		b.WriteString(", skilled in ")
		b.WriteString(s.skill)
	}
	s.d.AgentID = best.ID
	s.decide(Assign, RuleWorkload, b.String())
	return true
}

// loadPhrase describes the chosen agent's load, e.g. "fewest active chats
// (2 of 6)" or "lowest workload (2 of 6 chats, 3 of 15 emails)".
func (s *decision) loadPhrase(a *Agent, candidates int) string {
	other := false
	for cl, n := range a.Active {
		if cl != s.class && n > 0 {
			other = true
		}
	}
	lead := "fewest active "
	if candidates == 1 {
		lead = "the only candidate, active "
	}
	if !other {
		return fmt.Sprintf("%s%ss (%d of %d)", lead, s.class, a.Active[s.class], a.Cap(s.class))
	}
	if candidates == 1 {
		lead = "the only candidate, workload "
	} else {
		lead = "lowest workload "
	}
	var parts []string
	for _, cl := range []switchboard.ChannelClass{switchboard.ClassChat, switchboard.ClassEmail} {
		if a.Active[cl] > 0 || cl == s.class {
			parts = append(parts, fmt.Sprintf("%d of %d %ss", a.Active[cl], a.Cap(cl), cl))
		}
	}
	return lead + "(" + strings.Join(parts, ", ") + ")"
}
