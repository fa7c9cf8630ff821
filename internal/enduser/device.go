package enduser

import "strings"

// deviceName names a device from its User-Agent for a person reading their
// session list ("Firefox on Windows", "Safari on iPhone"). It recognises
// the common browsers and systems; anything else shows the agent's first
// word, and no agent at all "Unknown device".
func deviceName(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return "Unknown device"
	}
	b, o := browserOf(ua), osOf(ua)
	switch {
	case b != "" && o != "":
		return b + " on " + o
	case b != "":
		return b
	case o != "":
		return o
	}
	first, _, _ := strings.Cut(ua, " ")
	first, _, _ = strings.Cut(first, "/")
	if len(first) > 40 {
		first = first[:40]
	}
	return first
}

// browserOf checks tokens in an order that works around User-Agents that
// name their ancestors (Edge says Chrome and Safari; Chrome says Safari).
func browserOf(ua string) string {
	for _, b := range [][2]string{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"}, {"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
		{"curl/", "curl"}, {"okhttp/", "Android app"}, {"CFNetwork/", "iOS app"}, {"Go-http-client/", "Go client"},
	} {
		if strings.Contains(ua, b[0]) {
			return b[1]
		}
	}
	return ""
}

func osOf(ua string) string {
	for _, o := range [][2]string{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o[0]) {
			return o[1]
		}
	}
	return ""
}
