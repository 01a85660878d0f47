package inbox

import (
	"context"
	"sort"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// Administration (docs/design.md §4.1): what the workspace's admin pages
// read. Each read is refused below admin, even where the data is open to
// every agent elsewhere (the agents list, the canned responses): an admin
// page starts with one of these, so the service layer, not the page,
// turns everyone else away.

// AdminSummary is what the administration overview shows.
type AdminSummary struct {
	Agents, Supervisors, Admins int
	Teams                       []string // named teams of the routing configuration, sorted
	Keywords                    int      // keyword rules naming topics
	Sites                       int
	Templates                   int
	CannedResponses             int
	ChannelsReplying            int // channels whose replies can go out
}

// AdminOverview sums up the deployment's configuration (admins).
func (s *Service) AdminOverview(ctx context.Context, actor switchboard.Actor) (AdminSummary, error) {
	if err := require(actor, switchboard.RoleAdmin, "administer Switchboard"); err != nil {
		return AdminSummary{}, err
	}
	var sum AdminSummary
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return sum, err
	}
	for _, a := range agents {
		sum.Agents++
		switch a.Role {
		case switchboard.RoleSupervisor:
			sum.Supervisors++
		case switchboard.RoleAdmin:
			sum.Admins++
		}
	}
	rc, err := s.RoutingConfig(ctx, actor)
	if err != nil {
		return sum, err
	}
	for team := range rc.Teams {
		if team != "" {
			sum.Teams = append(sum.Teams, team)
		}
	}
	sort.Strings(sum.Teams)
	sum.Keywords = len(rc.Keywords)
	sites, err := s.store.ListSites(ctx)
	if err != nil {
		return sum, err
	}
	sum.Sites = len(sites)
	templates, err := s.store.Templates(ctx)
	if err != nil {
		return sum, err
	}
	sum.Templates = len(templates)
	canned, err := s.store.CannedResponses(ctx)
	if err != nil {
		return sum, err
	}
	sum.CannedResponses = len(canned)
	for _, ch := range switchboard.Channels {
		if _, snd := s.channel(ch.ReplyChannel()); snd != nil {
			sum.ChannelsReplying++
		}
	}
	return sum, nil
}

// AdminAgents lists every agent with their load, for the page where
// admins change them (admins).
func (s *Service) AdminAgents(ctx context.Context, actor switchboard.Actor) ([]view.Agent, error) {
	if err := require(actor, switchboard.RoleAdmin, "administer agents"); err != nil {
		return nil, err
	}
	return s.Agents(ctx, actor)
}

// AdminRoutingConfig returns the routing configuration for the page that
// edits it (admins; supervisors read it through RoutingConfig).
func (s *Service) AdminRoutingConfig(ctx context.Context, actor switchboard.Actor) (RoutingConfig, error) {
	if err := require(actor, switchboard.RoleAdmin, "edit the routing configuration"); err != nil {
		return RoutingConfig{}, err
	}
	return s.RoutingConfig(ctx, actor)
}

// AdminTemplates lists the WhatsApp message templates for the page that
// edits them (admins).
func (s *Service) AdminTemplates(ctx context.Context, actor switchboard.Actor) ([]switchboard.MessageTemplate, error) {
	if err := require(actor, switchboard.RoleAdmin, "edit templates"); err != nil {
		return nil, err
	}
	return s.Templates(ctx, actor)
}

// AdminCannedResponses lists the canned responses for the page that
// edits them (admins).
func (s *Service) AdminCannedResponses(ctx context.Context, actor switchboard.Actor) ([]CannedResponse, error) {
	if err := require(actor, switchboard.RoleAdmin, "edit canned responses"); err != nil {
		return nil, err
	}
	return s.CannedResponses(ctx, actor)
}

// ChannelStatus says whether a channel can carry replies in this
// deployment, as it was wired at start (SetChannel).
type ChannelStatus struct {
	Channel switchboard.Channel
	// RepliesOn is the channel replies go out on: the channel itself, or
	// SMS for a voicemail.
	RepliesOn switchboard.Channel
	// Sender reports whether replies can go out (the provider's
	// credentials were configured); Policy whether the channel's rules
	// (messaging windows, opt-outs, templates) are checked before sending.
	Sender, Policy bool
}

// ChannelStatuses reports every channel's status, in the order of
// switchboard.Channels (admins).
func (s *Service) ChannelStatuses(ctx context.Context, actor switchboard.Actor) ([]ChannelStatus, error) {
	if err := require(actor, switchboard.RoleAdmin, "see the channels' configuration"); err != nil {
		return nil, err
	}
	out := make([]ChannelStatus, 0, len(switchboard.Channels))
	for _, ch := range switchboard.Channels {
		reply := ch.ReplyChannel()
		policy, sender := s.channel(reply)
		out = append(out, ChannelStatus{Channel: ch, RepliesOn: reply, Sender: sender != nil, Policy: policy != nil})
	}
	return out, nil
}
