package store

import "github.com/koelvoice/koel/ivr"

// ValidateBusiness reports, without writing, whether CreateBusiness or
// UpdateBusiness would refuse b with [ErrInvalid]. Callers that write
// several rows outside one transaction (provisioning) check them all first,
// so a refusal never leaves half of them written.
func ValidateBusiness(b ivr.Business) error { return validateBusiness(b) }

// ValidateConnection reports, without writing, whether CreateConnection or
// UpdateConnection would refuse c with [ErrInvalid]. A zero BusinessID is
// accepted (the business may not be created yet).
func ValidateConnection(c ivr.Connection) error {
	var v validator
	if c.BusinessID != 0 {
		v.id("business", c.BusinessID)
	}
	v.key("channel", string(c.Channel))
	v.key("identifier", c.Identifier)
	v.settings(c.Settings)
	return v.err
}
