// Package route decides who answers a conversation (docs/design.md §5). It is pure
// logic: the dispatcher (route/dispatch) loads agents and team
// configuration from the store, calls Router.Decide, and writes the
// Decision and its Trace to the conversation's events.
//
// A team's rules run in order (DefaultRules): continuity, business_hours,
// availability, skills, workload. Each rule decides, narrows the
// candidates, or passes, and adds one Step to the trace with a sentence a
// person can read in the UI. Two invariants hold whatever the configured
// order: the router never assigns to an agent who is not online, and never
// past an agent's cap for the conversation's channel class.
//
// Topics come from keyword rules first, then from a multinomial naive Bayes
// classifier trained on resolved conversations (Train, Classifier). Business
// hours are weekly schedules in a time zone's wall time, with holidays
// (Schedule). SampleConversations generates a labelled data set for tests,
// benchmarks and the demo.
package route
