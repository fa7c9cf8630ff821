package billing

import (
	"testing"

	"github.com/abacusbilling/abacus/internal/document"
)

func TestWithEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in         document.Party
		id, scheme string
	}{
		{document.Party{VATID: "DE136695976", Email: "a@b.example"}, "DE136695976", "9930"},
		{document.Party{EndpointID: "4035811991021", EndpointScheme: "0088", VATID: "DE136695976"}, "4035811991021", "0088"},
		// No e-mail fallback: Peppol has no e-mail scheme, so the UBL route
		// answers with what to set instead of an invalid document.
		{document.Party{Email: "only@mail.example"}, "", ""},
		{document.Party{VATID: "CHE-116.281.710"}, "", ""},
	}
	for _, c := range cases {
		got := withEndpoint(c.in)
		if got.EndpointID != c.id || got.EndpointScheme != c.scheme {
			t.Errorf("withEndpoint(%+v) = %q/%q, want %q/%q", c.in, got.EndpointID, got.EndpointScheme, c.id, c.scheme)
		}
	}
}
