package server

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/web"
)

// analytics serves GET /api/v1/analytics/{measure} (docs/design.md §4.3)
// as JSON, or as CSV with format=csv.
func (s *Server) analytics(w http.ResponseWriter, r *http.Request, actor switchboard.Actor) error {
	q, err := web.ParseAnalyticsQuery(r.URL.Query(), s.Inbox.Now())
	if err != nil {
		return err
	}
	a, err := s.Inbox.Analytics(r.Context(), actor, r.PathValue("measure"), q)
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("format") {
	case "", "json":
		writeJSON(w, http.StatusOK, a)
		return nil
	case "csv":
		return writeCSV(w, a)
	}
	return switchboard.Errorf(switchboard.EINVALID, "format: want json or csv")
}

func writeCSV(w http.ResponseWriter, a inbox.Analytics) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, a.Measure))
	cw := csv.NewWriter(w)
	cw.Write(a.Columns)
	for _, row := range a.Rows {
		rec := make([]string, len(a.Columns))
		for i, c := range a.Columns {
			switch v := row[c].(type) {
			case float64:
				rec[i] = strconv.FormatFloat(v, 'f', -1, 64)
			case nil:
			case map[string]int:
				b, _ := json.Marshal(v)
				rec[i] = string(b)
			default:
				rec[i] = fmt.Sprint(v)
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
