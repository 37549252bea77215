package webhook

import (
	"bytes"
	"encoding/json"
)

// maxUIDLength bounds a UID worth echoing: the API server's are UUIDs.
const maxUIDLength = 128

// requestUID finds request.uid in the beginning of an AdmissionReview, without reading the rest,
// which may not have arrived: the API server writes kind, apiVersion, then the request with its
// UID first. It returns "" when the prefix does not give one.
func requestUID(prefix []byte) string {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if !enterObject(dec) || !findKey(dec, "request") || !enterObject(dec) || !findKey(dec, "uid") {
		return ""
	}
	tok, err := dec.Token()
	if uid, ok := tok.(string); err == nil && ok && len(uid) <= maxUIDLength {
		return uid
	}
	return ""
}

// enterObject reads the '{' of an object.
func enterObject(dec *json.Decoder) bool {
	tok, err := dec.Token()
	return err == nil && tok == json.Delim('{')
}

// findKey reads the object's members until key, leaving its value next; false if the object ends
// or the input does first.
func findKey(dec *json.Decoder, key string) bool {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if name, _ := tok.(string); name == key {
			return true
		}
		var skipped json.RawMessage
		if err := dec.Decode(&skipped); err != nil {
			return false
		}
	}
	return false
}
