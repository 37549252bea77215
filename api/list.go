package api

import "strings"

// parseList splits s on sep and parses each entry, blanks around it trimmed. An empty value is an
// empty list, and empty entries are skipped, as Kuma skips them ("22,80,"). parse returns the
// entry's value, or the offending token (empty for the whole entry) and what is wrong with it.
func parseList[T any](s, sep, form string, parse func(entry string) (T, string, string)) ([]T, error) {
	if strings.TrimSpace(s) == "" {
		return []T{}, nil
	}
	entries := strings.Split(s, sep)
	out := make([]T, 0, len(entries))
	for _, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		v, token, problem := parse(entry)
		if problem != "" {
			if token == "" {
				token = entry
			}
			return nil, invalid(s, token, problem, form)
		}
		out = append(out, v)
	}
	return out, nil
}

// whole adapts a parser that judges an entry as a whole to parseList.
func whole[T any](parse func(string) (T, string)) func(string) (T, string, string) {
	return func(entry string) (T, string, string) {
		v, problem := parse(entry)
		return v, "", problem
	}
}
