package messenger

import "time"

// Messaging windows, counted from the customer's last message.
const (
	// ResponseWindow is the standard window for any reply.
	ResponseWindow = 24 * time.Hour
	// HumanAgentWindow is how long a human agent may still reply with
	// the HUMAN_AGENT tag.
	HumanAgentWindow = 7 * 24 * time.Hour
)

// Send modes SendMode returns.
const (
	ModeResponse   = "RESPONSE"
	ModeHumanAgent = "HUMAN_AGENT"
)

// SendMode says how an agent's reply may go out at now, given the
// customer's last message: ModeResponse within 24 hours, ModeHumanAgent
// (send with TagHumanAgent) up to 7 days, and "" (refused) after that or
// when the customer never wrote. reason explains the choice in words an
// agent understands; the composer and the send path share it.
//
// A lastInbound after now (clock skew) counts as just received.
func SendMode(lastInbound, now time.Time) (mode, reason string) {
	if lastInbound.IsZero() {
		return "", "The customer has not messaged this account yet; Messenger and Instagram only allow replies to a customer's message."
	}
	age := max(now.Sub(lastInbound), 0)
	switch {
	case age < ResponseWindow:
		return ModeResponse, "Within 24 hours of the customer's last message."
	case age < HumanAgentWindow:
		return ModeHumanAgent, "More than 24 hours since the customer's last message: the reply is sent with the HUMAN_AGENT tag, allowed for agents' replies up to 7 days."
	}
	return "", "More than 7 days since the customer's last message; Messenger and Instagram allow no reply until the customer writes again."
}

// TagFor returns the Tag Send needs for a SendMode mode.
func TagFor(mode string) Tag {
	if mode == ModeHumanAgent {
		return TagHumanAgent
	}
	return ""
}
