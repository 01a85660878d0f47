package inbox

import (
	"context"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// Customer returns a customer with identities and conversations. For a
// customer merged into another, it returns the id of the one that
// survived instead (mergedInto), and no view.
func (s *Service) Customer(ctx context.Context, actor switchboard.Actor, id string) (c view.Customer, mergedInto string, err error) {
	cu, err := s.store.GetCustomer(ctx, id)
	if err != nil {
		return c, "", err
	}
	if cu.MergedInto != "" {
		return c, cu.MergedInto, nil
	}
	convs, err := s.store.CustomerConversations(ctx, cu.ID)
	if err != nil {
		return c, "", err
	}
	cv, err := s.withPresence(ctx, convs)
	if err != nil {
		return c, "", err
	}
	return view.NewCustomer(cu, cv), "", nil
}

// Merge folds the customer other into keep: identities and conversations
// move to keep, and other is left behind as a redirect. When both have an
// open conversation, the other's messages move into keep's. Supervisors
// only: it joins two people's histories.
func (s *Service) Merge(ctx context.Context, actor switchboard.Actor, keep, other string) (view.Customer, error) {
	return s.joinOrPart(ctx, actor, keep, other, "merge customers", s.store.MergeCustomers)
}

// Unmerge undoes the last merge of other into keep, as recorded: the
// other's identities, claims, conversations and messages go back to it.
// Supervisors only, as merging is.
func (s *Service) Unmerge(ctx context.Context, actor switchboard.Actor, keep, other string) (view.Customer, error) {
	return s.joinOrPart(ctx, actor, keep, other, "undo merges", s.store.UnmergeCustomers)
}

// joinOrPart carries out a merge or its undoing, op, which returns the
// conversations it changed, and answers keep as it is now.
func (s *Service) joinOrPart(ctx context.Context, actor switchboard.Actor, keep, other, doing string,
	op func(ctx context.Context, keep, other, by string) ([]string, error)) (view.Customer, error) {
	if err := require(actor, switchboard.RoleSupervisor, doing); err != nil {
		return view.Customer{}, err
	}
	if other == "" {
		return view.Customer{}, switchboard.Errorf(switchboard.EINVALID, "other_id is required")
	}
	changed, err := op(ctx, keep, other, actor.ID)
	if err != nil {
		return view.Customer{}, err
	}
	s.announceConversations(ctx, actor.ID, changed...)
	s.wakeRouter(changed...)
	c, _, err := s.Customer(ctx, actor, keep)
	return c, err
}
