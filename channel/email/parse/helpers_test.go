package parse

import "regexp"

var onAttrRE = regexp.MustCompile(`<[^>]*\son[a-z]+\s*=`)

func emailStrings(e *Email) map[string]string {
	m := map[string]string{
		"MessageID": e.MessageID, "From.Name": e.From.Name, "From.Addr": e.From.Addr, "Subject": e.Subject,
		"Text": e.Text, "Reply": e.Reply, "HTML": e.HTML, "Auto": e.Auto,
		"Malformed": e.Malformed, "ReturnPath": e.ReturnPath,
	}
	add := func(k string, vs []string) {
		for _, v := range vs {
			m[k+":"+v] = v
		}
	}
	add("InReplyTo", e.InReplyTo)
	add("References", e.References)
	add("DeliveredTo", e.DeliveredTo)
	add("Dropped", e.Dropped)
	for _, list := range [][]Address{e.ReplyTo, e.To, e.Cc} {
		for _, a := range list {
			m["addr:"+a.Name] = a.Name
			m["addr:"+a.Addr] = a.Addr
		}
	}
	for _, a := range e.Attachments {
		m["att:"+a.Name] = a.Name
		m["attct:"+a.ContentType] = a.ContentType
		m["attcid:"+a.ContentID] = a.ContentID
	}
	if b := e.Bounce; b != nil {
		m["OriginalMessageID"] = b.OriginalMessageID
		for _, r := range b.Recipients {
			m["rcpt:"+r.FinalRecipient] = r.FinalRecipient
			m["action:"+r.Action] = r.Action
			m["status:"+r.Status] = r.Status
			m["diag:"+r.Diagnostic] = r.Diagnostic
		}
	}
	return m
}
