package route

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// SampleTopics are the topics SampleConversations writes about.
var SampleTopics = []string{"account", "billing", "returns", "sales", "shipping", "technical"}

// SampleConversations returns n labelled customer messages, the same for
// the same seed: a stand-in for resolved conversations when there are none
// yet (tests, benchmarks, the demo).
//
// Each message is built from a topic's templates (about twenty per topic,
// each with alternatives for most phrases), wrapped in greetings, context
// and sign-offs shared by every topic, and filled with order numbers,
// products, amounts, carriers and dates. To keep the task honest the topics
// share vocabulary ("order", "refund", "charged", "account", "app",
// "plan", "delivery" appear under several), a quarter of the messages add
// a remark that belongs to another topic, one in seven asks a lesser second
// question on another topic, one in twenty is too vague to classify, and
// about one word in thirty is misspelt (a letter dropped, doubled or
// swapped). The topic is the
// customer's main request, as an agent would have tagged it.
func SampleConversations(seed uint64, n int) []Labeled {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Labeled, 0, n)
	for i := range n {
		topic := SampleTopics[i%len(SampleTopics)]
		out = append(out, Labeled{Text: sampleMessage(r, topic), Topic: topic})
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func sampleMessage(r *rand.Rand, topic string) string {
	var parts []string
	if r.IntN(10) < 7 {
		parts = append(parts, expand(r, pick(r, greetings)))
	}
	if r.IntN(10) < 3 {
		parts = append(parts, expand(r, pick(r, contexts)))
	}
	main := sampleTemplates[topic]
	first := r.IntN(len(main))
	parts = append(parts, expand(r, main[first]))
	if r.IntN(10) < 4 {
		// A second request on the same topic, never the same sentence.
		second := (first + 1 + r.IntN(len(main)-1)) % len(main)
		parts = append(parts, expand(r, main[second]))
	}
	if r.IntN(100) < 15 {
		// A second, lesser question on another topic: agents tag the
		// conversation with the first.
		if other := SampleTopics[r.IntN(len(SampleTopics))]; other != topic {
			parts = append(parts, "Also, "+lowerFirst(expand(r, pick(r, sampleTemplates[other]))))
		}
	}
	if r.IntN(100) < 5 {
		// Too vague to tell: only the conversation that followed did.
		parts = []string{expand(r, pick(r, vague))}
	}
	if r.IntN(4) == 0 {
		// A side remark from another topic, before or after the request.
		other := SampleTopics[r.IntN(len(SampleTopics))]
		if other != topic {
			side := expand(r, pick(r, sideRemarks[other]))
			if r.IntN(2) == 0 {
				parts = append(parts, side)
			} else {
				parts = append([]string{side}, parts...)
			}
		}
	}
	if r.IntN(10) < 5 {
		parts = append(parts, expand(r, pick(r, closings)))
	}
	text := strings.Join(parts, " ")
	text = typos(r, text)
	switch r.IntN(12) {
	case 0:
		text = strings.ToLower(text)
	case 1:
		text = strings.ToUpper(text)
	case 2:
		text = strings.NewReplacer(".", "", ",", "", "?", "", "!", "").Replace(text)
	}
	return text
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' || strings.HasPrefix(s, "I ") || strings.HasPrefix(s, "I'") {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// expand fills a template: "{a|b|c}" picks one alternative (groups do not
// nest) and the placeholders $ORDER, $PRODUCT, $AMOUNT, $CARRIER, $WHEN,
// $N, $PLAN and $APP are replaced by sample values.
func expand(r *rand.Rand, t string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(t)
			break
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			b.WriteString(t)
			break
		}
		b.WriteString(t[:i])
		alts := strings.Split(t[i+1:i+j], "|")
		b.WriteString(alts[r.IntN(len(alts))])
		t = t[i+j+1:]
	}
	s := b.String()
	for _, p := range placeholders {
		for strings.Contains(s, p.key) {
			s = strings.Replace(s, p.key, p.fill(r), 1)
		}
	}
	return s
}

var placeholders = []struct {
	key  string
	fill func(*rand.Rand) string
}{
	{"$ORDER", func(r *rand.Rand) string {
		n := strconv.Itoa(10000 + r.IntN(90000))
		switch r.IntN(3) {
		case 0:
			return "#" + n
		case 1:
			return "order " + n
		}
		return "SB-" + n
	}},
	{"$PRODUCT", func(r *rand.Rand) string {
		return pick(r, []string{"blue hoodie", "running shoes", "coffee grinder", "desk lamp", "phone case", "backpack", "wool scarf", "headphones", "yoga mat", "kettle", "jacket", "sneakers", "watch strap", "water bottle"})
	}},
	{"$AMOUNT", func(r *rand.Rand) string {
		cur := pick(r, []string{"$", "€", "£"})
		return cur + strconv.Itoa(5+r.IntN(300)) + "." + strconv.Itoa(10+r.IntN(89))
	}},
	{"$CARRIER", func(r *rand.Rand) string {
		return pick(r, []string{"UPS", "DHL", "FedEx", "USPS", "Royal Mail", "La Poste", "the courier", "DPD"})
	}},
	{"$WHEN", func(r *rand.Rand) string {
		return pick(r, []string{"last week", "on Monday", "yesterday", "two weeks ago", "on the 3rd", "10 days ago", "last month", "on Friday"})
	}},
	{"$PLAN", func(r *rand.Rand) string {
		return pick(r, []string{"Pro plan", "Team plan", "Business plan", "Starter plan", "annual plan", "premium membership"})
	}},
	{"$APP", func(r *rand.Rand) string {
		return pick(r, []string{"the app", "the iOS app", "the Android app", "your website", "the dashboard", "the mobile app"})
	}},
	{"$N", func(r *rand.Rand) string { return strconv.Itoa(2 + r.IntN(48)) }},
}

// typos misspells about one word in thirty.
func typos(r *rand.Rand, s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if len(w) < 4 || r.IntN(30) != 0 {
			continue
		}
		// Runes, not bytes: a typo must not split a multi-byte character
		// (the text ends up in databases that refuse invalid UTF-8).
		b := []rune(w)
		if len(b) < 4 {
			continue
		}
		p := 1 + r.IntN(len(b)-2)
		switch r.IntN(3) {
		case 0: // dropped letter
			b = append(b[:p], b[p+1:]...)
		case 1: // doubled letter
			b = append(b[:p+1], b[p:]...)
		default: // swapped letters
			b[p], b[p+1] = b[p+1], b[p]
		}
		words[i] = string(b)
	}
	return strings.Join(words, " ")
}

var greetings = []string{
	"Hi,", "Hello,", "Hey there,", "Hi team,", "Good morning,", "Good afternoon.", "Hello support,",
	"Hi there!", "Dear Switchboard team,", "hey", "Hi, hope you're well.", "Hello, quick question.",
	"Hi, I need some help please.", "Good evening,",
}

var contexts = []string{
	"I've been a customer for {years|a long time|a while} now.",
	"I {ordered|bought|purchased} something from you $WHEN.",
	"I already {emailed|wrote to you|called} about this $WHEN.",
	"This is my {second|third} message about this.",
	"My {wife|husband|friend|colleague} {recommended|told me about} your shop.",
	"I'm writing from my {phone|work computer} so sorry for typos.",
	"{Sorry to bother you again|I hope this is the right place to ask}.",
	"I {use|have used} {$APP|your service} {every day|for months}.",
}

var closings = []string{
	"Thanks!", "Thank you.", "Thanks in advance.", "Cheers", "Regards, Sam", "Best, Alex",
	"Please get back to me {asap|soon|when you can}.", "Looking forward to your reply.",
	"Appreciate the help.", "thx", "Kind regards, Maria", "Many thanks, Tom", "Have a nice day!",
	"Let me know.", "This is {urgent|quite urgent|not urgent}.",
}

// sampleTemplates are the customer's main request, per topic.
var sampleTemplates = map[string][]string{
	"billing": {
		"I was charged {twice|two times|double} for $ORDER.",
		"{Why|How come} was I charged $AMOUNT {this month|on my card|yesterday}?",
		"My {credit card|card|debit card} was {declined|refused|rejected} {at checkout|when paying|but the money left my account}.",
		"Can you send me {an invoice|a receipt|a VAT invoice} for $ORDER?",
		"I need to {update|change} {my billing address|the card on file|my payment method}.",
		"There is a charge of $AMOUNT on my {statement|bank statement|card} that I don't recognise.",
		"My {subscription|$PLAN} renewed {and I was billed|and charged me} $AMOUNT {but I cancelled|without notice|even though I cancelled}.",
		"The {invoice|bill} shows the wrong {amount|company name|tax number}.",
		"{Payment failed|My payment keeps failing|The payment did not go through} {but|and} I {was still charged|see a pending charge}.",
		"{When will|How long until} the {refund|money} for the {duplicate charge|overcharge|double payment} {show up|appear} on my {card|account}?",
		"The {promo code|discount code|coupon} was not {applied|deducted} and I paid {full price|$AMOUNT}.",
		"Can I pay by {bank transfer|PayPal|invoice} instead of {card|credit card}?",
		"I was {overcharged|billed too much} for {shipping|my order} {by|roughly} $AMOUNT.",
		"Please {cancel|stop} the {automatic renewal|auto-renew|recurring payment} {of|on} my {subscription|$PLAN}.",
		"{Where can I|How do I} {download|find} {my invoices|past invoices|billing history}?",
		"My {company|accountant} needs {a corrected invoice|invoices with our VAT number}.",
		"{Why is there|What is} {an extra fee|a currency conversion fee|a tax} of $AMOUNT on my {bill|invoice}?",
		"I was billed {for the wrong plan|for $PLAN instead of the cheaper one|for $N seats but we only use a few}.",
		"Please {refund|reverse} the {charge|payment} of $AMOUNT, it was a mistake.",
		"{The|My} {bank|card issuer} says the {payment|transaction} is {still pending|on hold}.",
	},
	"shipping": {
		"Where is my {order|package|parcel}? {It was|I ordered it} $WHEN.",
		"$ORDER {still hasn't arrived|has not been delivered|is late}.",
		"The tracking {number|link|page} for $ORDER {doesn't work|shows nothing|hasn't updated in $N days}.",
		"{$CARRIER|The carrier} says {delivered|the parcel was delivered} but I {never got it|didn't receive anything|can't find it}.",
		"Can I {change|update} the {delivery|shipping} address for $ORDER?",
		"How long does {shipping|delivery} take to {Canada|Germany|the UK|Australia|France}?",
		"{Do you|Can you} ship {internationally|to Switzerland|to Norway|outside the EU}?",
		"My {package|parcel} {is stuck in customs|is held at customs|has been at the depot for $N days}.",
		"{Is|Can I get} {express|next-day|same-day} delivery {available|for $ORDER}?",
		"{$CARRIER|The courier} {tried to deliver|left a note} {while I was out|but nobody rang}, {how|can} I {reschedule|rearrange delivery}?",
		"{When will|Can you tell me when} $ORDER {ship|be dispatched|be sent out}?",
		"The {estimated delivery date|delivery date} {keeps changing|has passed|was $WHEN}.",
		"{Part of my order|One of the items|Only half my order} {arrived|was delivered}, where is the rest?",
		"Can {$CARRIER|the driver} leave the {parcel|package} {with a neighbour|at the door|in the locker}?",
		"My {order|package} {was sent to|went to} my old address.",
		"{Why|How come} {hasn't|has not} my order {shipped|been dispatched} yet, it's been $N days.",
		"{What are|How much are} the {shipping costs|delivery fees} for {a big order|heavy items|express}?",
		"The {parcel|package} {says|shows} {returned to sender|undeliverable}.",
		"I need the $PRODUCT {before|by} {Friday|the weekend|Christmas}, will it arrive in time?",
		"{Can I|Is it possible to} pick up $ORDER {in store|at a pickup point} instead?",
	},
	"returns": {
		"I'd like to {return|send back} the $PRODUCT {I ordered|from $ORDER}.",
		"How do I {return|exchange} {an item|the $PRODUCT|my order}?",
		"The $PRODUCT {doesn't fit|is too small|is too big}, can I {exchange|swap} it for {another size|a larger size|a smaller one}?",
		"{I received|You sent} the wrong {item|size|colour} {in|for} $ORDER, I want to {return|exchange} it.",
		"The $PRODUCT arrived {damaged|broken|scratched|faulty} and I want {a replacement|to return it|my money back}.",
		"Can you send me a {return label|prepaid return label|returns form}?",
		"I {sent back|returned|posted back} $ORDER $WHEN, when will I get my refund?",
		"Is it {too late|still possible} to return {the $PRODUCT|something I bought} $WHEN?",
		"{What is|How long is} your return {policy|window|period}?",
		"The {return|refund} for $ORDER {hasn't been processed|is taking forever|still shows pending}.",
		"{Do I have to|Who} pay for {return shipping|the return postage}?",
		"{I changed my mind|It's not what I expected} about the $PRODUCT, can I {return|send it back} {it|}?",
		"{Can I|I want to} exchange the $PRODUCT for {a different colour|another model|store credit}.",
		"My return {was rejected|was refused|was marked incomplete} but I sent {everything|all the items} back.",
		"{Where|To which address} do I {send|ship} the {return|items I'm returning}?",
		"The $PRODUCT {stopped working|broke|fell apart} after $N days, {can I return it|is it under warranty}?",
		"I {dropped off|handed} the return at {$CARRIER|the post office} $WHEN, did you {receive|get} it?",
		"Can I return {part of|one item from} $ORDER {and keep the rest|only}?",
		"{I was promised|You said I'd get} a {full refund|refund} {for the return|when you got the item back}.",
		"{Please|Can you} {arrange|schedule} a {pickup|collection} for my return.",
	},
	"technical": {
		"{$APP|The app} {keeps crashing|crashes|freezes} when I {open it|try to pay|upload a photo}.",
		"I get {an error|error $N|a 500 error|a blank page} when I {try to|} {log in|check out|save my settings}.",
		"{$APP|The website} is {really slow|not loading|down} {today|for me|since the update}.",
		"{Notifications|Push notifications|Email alerts} {stopped working|don't arrive|are delayed} {after the update|since $WHEN}.",
		"The {sync|synchronisation} between {$APP|the app} and {the website|my laptop} {is broken|doesn't work}.",
		"I {can't|cannot} {upload|attach} {files|photos|PDFs} {in|to} $APP.",
		"Your {API|webhook|integration} {returns|gives} {a 401|an error|timeouts} {since $WHEN|when I call it}.",
		"{The checkout page|The payment page|The cart} {won't load|is broken|shows an error} {on|in} {Safari|Chrome|Firefox|$APP}.",
		"{Is there|Do you have} {an outage|a known bug|an issue} {with|on} $APP {right now|today}?",
		"The {search|filter|export} {feature|button} {doesn't work|returns nothing|is greyed out}.",
		"After {updating|installing the new version of} $APP {nothing loads|I see a white screen|it won't start}.",
		"{How do I|Can you help me} {connect|integrate} {Shopify|Zapier|Slack|our CRM} {with|to} your {service|API}?",
		"The {page|screen|dashboard} {shows|displays} {the wrong data|garbled text|old data} {after|since} {the update|$WHEN}.",
		"{Bug report|Found a bug}: {the button|the save button|the form} {does nothing|doesn't respond} {on mobile|on my phone}.",
		"{$APP|The app} {drains my battery|uses too much data|is very laggy} {since|after} the {latest|last} update.",
		"{I keep getting|There's} a {timeout|network error|connection error} {when|whenever} I {sync|refresh|open my order history}.",
		"{The QR code|The barcode scanner|The camera} {doesn't work|won't scan} in $APP.",
		"Your {site|website|page} {looks broken|is not displaying properly} on {my phone|my tablet|Firefox}.",
	},
	"account": {
		"I {can't|cannot|am unable to} {log in|sign in|access my account} {since $WHEN|anymore|on $APP}.",
		"{How do I|Please help me} {reset|change} my password{?|, the reset email never arrives.}",
		"The password reset {email|link} {never arrives|doesn't work|has expired}.",
		"I want to {change|update} the email address on my account.",
		"{Please|Can you} {delete|close|remove} my account {and all my data|permanently|}.",
		"My account {is locked|was locked|has been suspended} {after too many attempts|for no reason|$WHEN}.",
		"{I lost|I changed} my phone and {can't|cannot} get the {two-factor|2FA|verification} code.",
		"{Someone|A stranger} {logged into|accessed|changed the password on} my account, {I think I was hacked|I didn't do this}.",
		"I have two accounts, can you {merge|combine} them?",
		"{How do I|Where can I} {change|update} my {username|name|phone number|profile} {on|in} $APP?",
		"I never {got|received} the {verification|confirmation|activation} email {for|to activate} my {new account|account}.",
		"{Can you|Please} {unlock|reactivate|restore} my account {$ORDER|}, {I need access|it was closed by mistake}.",
		"I {signed up|registered} with the wrong email {address|}, can you fix it?",
		"{How do I|Can I} {download|export|get a copy of} {my personal data|all my data} (GDPR)?",
		"{I want to|How do I} {add|remove} a {user|team member|colleague} {to|from} our {company account|account}.",
		"{It says|I get} \"{account not found|invalid credentials|user does not exist}\" {but I have an account|when I log in}.",
		"{Please|Can you} {unsubscribe me|stop the marketing emails|remove me from the newsletter}.",
		"{How do I|Can I} {turn off|disable|enable} {two-factor authentication|2FA} on my account?",
	},
	"sales": {
		"{What is the price|How much does it cost|What would it cost} for {the $PLAN|$N users|$N seats}?",
		"Do you offer {a discount|volume pricing|a bulk discount} for {$N units|large orders|schools|non-profits}?",
		"{Can I|I would like to} {book|schedule|get} a {demo|call with sales|product demo} {this week|next week|}.",
		"{Can you|Could you} send me a {quote|quotation|price offer} for $N {$PRODUCT|units|licences}?",
		"{What's the difference|How is the $PLAN different} {between|from} {the Pro and Business plans|the Starter plan}?",
		"{Is|Will} the $PRODUCT {be back in stock|available again|in stock} {soon|in size 42|in black}?",
		"We're a {company|startup|team} of $N and {interested in|considering} your {Enterprise|Business} {plan|offer}.",
		"{Do you have|Is there} {a free trial|a trial period|a money-back guarantee} for the $PLAN?",
		"{I'd like to|Can I} {upgrade|move} {to the $PLAN|our account to a bigger plan} {, what would it cost|}?",
		"{Do you sell|Can I buy} {wholesale|in bulk|gift cards}?",
		"{Are there|Will there be} {any sales|discounts|deals} {on|for} {Black Friday|the holidays|students}?",
		"{We'd like to|Interested to} {partner with you|become a reseller|stock your products in our store}.",
		"{Which|What} $PRODUCT {would you recommend|is best} for {running|travel|a beginner|the office}?",
		"{Can you|Could you} {match|beat} a {competitor's|lower} price of $AMOUNT?",
		"{Does the|Do you have a} $PLAN {include|come with} {priority support|an API|SSO|unlimited users}?",
		"{I'm thinking of|Before} buying {the $PRODUCT|$N licences|the $PLAN}, {a few questions|can you tell me more}.",
		"{What payment terms|Do you offer invoicing or net 30} for {business customers|large orders}?",
		"{Is there|Do you have} {a catalogue|a price list|a brochure} {I could see|you could send me}?",
	},
}

// vague messages say nothing of the topic.
var vague = []string{
	"I have a problem with my {order|account}, can someone call me?",
	"{Please|Can someone} {call|contact} me {back|asap}.",
	"Something is wrong, {please help|what do I do}?",
	"{Still|I'm still} waiting for an answer {about my issue|to my last email}.",
	"Can I speak to a {human|manager|real person}?",
	"It's about {$ORDER|my last order|the thing I bought}.",
}

// sideRemarks are sentences about a topic that are not the request: they
// make other topics' messages share its words.
var sideRemarks = map[string][]string{
	"billing":   {"I paid by card.", "The payment went through fine.", "I got the invoice by email.", "I was charged $AMOUNT for it.", "I'm on the $PLAN."},
	"shipping":  {"The delivery was quick.", "It arrived $WHEN.", "$CARRIER delivered it.", "The package came today.", "Tracking says delivered."},
	"returns":   {"I've returned things before without problems.", "I don't want to return it.", "I kept the box.", "No need for a refund."},
	"technical": {"I'm using $APP.", "I'm on an iPhone.", "The app works fine otherwise.", "I updated the app $WHEN.", "I'm on Chrome."},
	"account":   {"My account email is the same as this one.", "I'm logged in right now.", "My username is sam_{1984|88|k}.", "I have an account."},
	"sales":     {"I might order more later.", "I love your products.", "We might upgrade soon.", "I saw your ad.", "Great prices by the way."},
}
