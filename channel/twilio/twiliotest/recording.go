package twiliotest

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// recordingType is what Twilio serves a recording as without an
// extension, or with .wav.
const recordingType = "audio/x-wav"

// AddRecording keeps wav as a call recording, as Twilio Voice does when a
// <Record> completes, and returns its RecordingSid and the RecordingUrl a
// recording status callback carries:
// {base}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid},
// without an extension.
func (s *Server) AddRecording(wav []byte) (recordingSID, recordingURL string) {
	recordingSID = newSID("RE")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordings[recordingSID] = bytes.Clone(wav)
	return recordingSID, s.baseURL + "/" + APIVersion + "/Accounts/" + url.PathEscape(s.accountSID) + "/Recordings/" + recordingSID
}

// handleRecording serves a recording's media: GET (and HEAD) without an
// extension or with .wav answers the WAV bytes as audio/x-wav, DELETE
// removes it (204), with Basic auth, as Twilio's Recording resource does
// when media auth is enforced. Twilio also transcodes to .mp3 and
// describes the recording as .json; the stand-in keeps WAV only and
// answers those 404.
func (s *Server) handleRecording(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	sid, ext, _ := strings.Cut(r.PathValue("Recording"), ".")
	s.mu.Lock()
	data, ok := s.recordings[sid]
	if ok && r.Method == http.MethodDelete {
		delete(s.recordings, sid)
	}
	s.mu.Unlock()
	if !ok || (ext != "" && ext != "wav") {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", recordingType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}
