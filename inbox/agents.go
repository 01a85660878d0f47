package inbox

import (
	"context"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// Authenticate returns the agent an API token belongs to, as an actor.
func (s *Service) Authenticate(ctx context.Context, token string) (switchboard.Actor, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return switchboard.Actor{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "an API token is required")
	}
	a, err := s.store.AgentByToken(ctx, token)
	if err != nil {
		return switchboard.Actor{}, err
	}
	return a.Actor(), nil
}

// Agents returns every agent with their active conversations per class.
func (s *Service) Agents(ctx context.Context, actor switchboard.Actor) ([]view.Agent, error) {
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.store.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]view.Agent, 0, len(agents))
	for _, a := range agents {
		out = append(out, view.NewAgent(a, counts[a.ID]))
	}
	return out, nil
}

// Agent returns one agent with their active conversations per class.
func (s *Service) Agent(ctx context.Context, actor switchboard.Actor, id string) (view.Agent, error) {
	a, err := s.store.GetAgent(ctx, id)
	if err != nil {
		return view.Agent{}, err
	}
	counts, err := s.store.ActiveCounts(ctx)
	if err != nil {
		return view.Agent{}, err
	}
	return view.NewAgent(a, counts[a.ID]), nil
}

// AddAgent creates an agent (admins, or Switchboard for the command line)
// and returns it with an API token, shown this once.
func (s *Service) AddAgent(ctx context.Context, actor switchboard.Actor, a switchboard.Agent) (switchboard.Agent, string, error) {
	if err := require(actor, switchboard.RoleAdmin, "add agents"); err != nil {
		return a, "", err
	}
	a, err := s.store.CreateAgent(ctx, a, "")
	if err != nil {
		return a, "", err
	}
	token, err := s.store.CreateToken(ctx, a.ID)
	if err != nil {
		return a, "", err
	}
	s.announceAgent(ctx, a)
	return a, token, nil
}

// SetAgentStatus changes an agent's availability: an agent their own,
// a supervisor anyone's.
func (s *Service) SetAgentStatus(ctx context.Context, actor switchboard.Actor, id string, status switchboard.AgentStatus) (view.Agent, error) {
	if id != actor.ID {
		if err := require(actor, switchboard.RoleSupervisor, "set other agents' status"); err != nil {
			return view.Agent{}, err
		}
	}
	before, err := s.store.GetAgent(ctx, id)
	if err != nil {
		return view.Agent{}, err
	}
	a, err := s.store.SetAgentStatus(ctx, id, status)
	if err != nil {
		return view.Agent{}, err
	}
	if a.Status != before.Status {
		s.announceAgent(ctx, a)
	}
	s.wakeRouter()
	return s.Agent(ctx, actor, id)
}

// UpdateAgent applies an admin's changes to an agent's role, skills,
// teams and caps.
func (s *Service) UpdateAgent(ctx context.Context, actor switchboard.Actor, id string, u switchboard.AgentUpdate) (view.Agent, error) {
	if err := require(actor, switchboard.RoleAdmin, "change agents"); err != nil {
		return view.Agent{}, err
	}
	if _, err := s.store.UpdateAgent(ctx, id, u); err != nil {
		return view.Agent{}, err
	}
	s.wakeRouter()
	return s.Agent(ctx, actor, id)
}
