package document

import (
	"strings"

	"github.com/abacusbilling/abacus"
)

// Profile is the set of rules a document is checked against on top of
// EN 16931: a CIUS (core invoice usage specification) such as Peppol BIS 3
// or XRechnung adds its own rules, an extension such as Factur-X BASIC
// restricts which terms are used. The Document's Specification (BT-24)
// says which applies.
type Profile string

const (
	ProfileEN16931   Profile = "en16931"   // EN 16931 alone (the CII example files, Factur-X EN 16931)
	ProfilePeppol    Profile = "peppol"    // Peppol BIS Billing 3.0: electronic addresses, a buyer or order reference, one note
	ProfileXRechnung Profile = "xrechnung" // XRechnung 3.0, the German CIUS: BR-DE-* (Leitweg-ID as buyer reference, seller contact…)
)

// Specification identifiers (BT-24) Abacus writes.
const (
	SpecEN16931       = "urn:cen.eu:en16931:2017"
	SpecXRechnung     = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
	SpecFacturXBasic  = "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic"
	SpecFacturXEN1693 = SpecEN16931 // the Factur-X EN 16931 ("COMFORT") profile uses the core identifier
)

// Profile returns the rule set d's Specification selects: Peppol when it
// is empty or names Peppol, XRechnung when it names XRechnung, else EN 16931.
func (d *Document) Profile() Profile {
	s := strings.ToLower(d.Specification)
	switch {
	case s == "" || strings.Contains(s, "peppol"):
		return ProfilePeppol
	case strings.Contains(s, "xrechnung"):
		return ProfileXRechnung
	}
	return ProfileEN16931
}

// specification is d.Specification, or Peppol BIS 3's when empty.
func (d *Document) specification() string {
	if d.Specification == "" {
		return CustomizationID
	}
	return d.Specification
}

// typeCode is BT-3: d.TypeCode or the kind's default.
func (d *Document) typeCode() string {
	if d.TypeCode != "" {
		return d.TypeCode
	}
	if d.Kind == KindCreditNote {
		return "381"
	}
	return "380"
}

// invoiceTypeCodes and creditTypeCodes are the UNTDID 1001 codes EN 16931
// allows (BR-CL-01) that Abacus reads as an invoice or a credit note.
var (
	invoiceTypeCodes = map[string]bool{"380": true, "384": true, "389": true, "326": true, "386": true, "393": true, "875": true, "876": true, "877": true, "751": true, "82": true, "80": true, "71": true, "102": true, "218": true, "219": true, "331": true, "382": true, "383": true, "387": true, "388": true, "390": true, "394": true, "395": true, "456": true, "457": true, "527": true, "575": true, "623": true, "633": true, "780": true, "935": true, "325": true, "385": true, "84": true}
	creditTypeCodes  = map[string]bool{"381": true, "81": true, "83": true, "261": true, "262": true, "296": true, "308": true, "396": true, "420": true, "458": true, "532": true}
)

// validateProfile adds the rules of d's CIUS: Peppol's electronic
// addresses and reference, XRechnung's BR-DE rules.
func (d *Document) validateProfile(v *abacus.Validation) {
	if tc := d.TypeCode; tc != "" {
		switch {
		case d.Kind == KindCreditNote && !creditTypeCodes[tc], d.Kind == KindInvoice && !invoiceTypeCodes[tc]:
			v.Add("type_code", "%q is not an EN 16931 type code for a %s (BR-CL-01): use 380, 384 or 389 for an invoice, 381 for a credit note", tc, d.Kind)
		}
	}
	switch d.Profile() {
	case ProfilePeppol:
		if d.BuyerReference == "" && d.OrderReference == "" {
			v.Add("buyer_reference", "buyer_reference or order_reference is required (PEPPOL-EN16931-R003)")
		}
		for _, p := range []struct {
			field string
			p     *Party
		}{{"seller", &d.Seller}, {"buyer", &d.Buyer}} {
			if p.p.EndpointID == "" {
				v.Add(p.field+".endpoint_id", "the Peppol electronic address is required (PEPPOL-EN16931-R010/R020)")
			}
		}
	case ProfileXRechnung:
		d.validateXRechnung(v)
	}
	for _, p := range []struct {
		field string
		p     *Party
	}{{"seller", &d.Seller}, {"buyer", &d.Buyer}} {
		if p.p.EndpointID != "" && p.p.EndpointScheme == "" {
			v.Add(p.field+".endpoint_scheme", "is required with endpoint_id, e.g. 0088 or 9930 (BR-62/BR-63)")
		}
	}
}

// validateXRechnung checks the XRechnung 3.0 rules (BR-DE-*) the model can
// get wrong.
func (d *Document) validateXRechnung(v *abacus.Validation) {
	if strings.TrimSpace(d.BuyerReference) == "" {
		v.Add("buyer_reference", "the Leitweg-ID or another buyer reference is required (BR-DE-15)")
	}
	s := &d.Seller
	if s.City == "" {
		v.Add("seller.city", "is required (BR-DE-3)")
	}
	if s.PostalCode == "" {
		v.Add("seller.postal_code", "is required (BR-DE-4)")
	}
	if s.ContactName == "" {
		v.Add("seller.contact_name", "a seller contact is required (BR-DE-5)")
	}
	if s.Phone == "" {
		v.Add("seller.phone", "the seller contact's telephone is required (BR-DE-6)")
	}
	if s.Email == "" {
		v.Add("seller.email", "the seller contact's e-mail is required (BR-DE-7)")
	}
	if d.Buyer.City == "" {
		v.Add("buyer.city", "is required (BR-DE-8)")
	}
	if d.Buyer.PostalCode == "" {
		v.Add("buyer.postal_code", "is required (BR-DE-9)")
	}
	if d.PaymentMeans == nil {
		v.Add("payment_means", "payment instructions are required (BR-DE-1)")
	}
	if s.EndpointID == "" {
		v.Add("seller.endpoint_id", "the seller's electronic address (BT-34) is mandatory in XRechnung 3.0")
	}
	if d.Buyer.EndpointID == "" {
		v.Add("buyer.endpoint_id", "the buyer's electronic address (BT-49) is mandatory in XRechnung 3.0")
	}
}
