package faq

import "strings"

// The lexicon maps words that customers use interchangeably in support
// conversations (shops, orders, payments, accounts, devices, agents) to one
// canonical word, applied to the FAQ's phrases and to the user's text alike,
// so that "where is my parcel" meets "where is my order". It is general
// customer-service English, not a list of any one FAQ's phrases; an FAQ that
// distinguishes two words grouped here (a "coupon" node and a "voucher" node)
// would see them merge, which is why the groups are kept narrow.

// phraseRewrites turn multi-word expressions into one word. Longer
// expressions are tried first.
var phraseRewrites = map[string]string{
	"log in": "login", "log on": "login", "sign in": "login", "logged in": "login",
	"sign on": "login", "sign up": "signup", "log out": "logout", "sign out": "logout",
	"send back": "return", "sent back": "return", "give back": "return", "take back": "return",
	"money back": "refund", "pay back": "refund", "charge back": "refund",
	"not working": "broken", "stopped working": "broken", "does not work": "broken",
	"do not work": "broken", "not work": "broken", "is dead": "broken",
	"e mail": "email", "credit card": "creditcard", "debit card": "debitcard",
	"real person": "agent", "live person": "agent", "human being": "agent",
	"customer service": "support", "customer care": "support", "customer support": "support",
	"call centre": "support", "call center": "support", "help desk": "support",
	"see you": "bye", "see ya": "bye", "talk later": "bye", "bye bye": "bye",
	"close by": "near", "how come": "why", "right now": "now", "at the moment": "now",
	// A question about a span of time, and one about an amount, are one
	// thing each whatever the adverb; the pair, not its two common words,
	// is the evidence.
	"how long": "howlong", "how fast": "howlong", "how soon": "howlong", "how quickly": "howlong",
	"how much": "howmuch",
	// Not wanting what was ordered is asking to cancel it.
	"do not want": "cancel", "no longer want": "cancel", "do not need": "cancel", "no longer need": "cancel",
	// Ways to pay are one kind of thing: cards, UPI apps, net banking.
	// Idioms: the end of a conversation, and what is owed.
	"that is it": "that is all", "outstanding amount": "balance", "amount due": "balance",
	// "Another" is "different" only next to an address: "does it come in
	// another color" is not about changing one (a synonym group made it so).
	"another address": "different address", "another location": "different address",
	"net banking": "netbanking", "internet banking": "netbanking", "online banking": "netbanking", "google pay": "gpay", "phone pe": "phonepe",
}

// maxRewriteWords is the longest expression in phraseRewrites.
const maxRewriteWords = 3

// rewriteStarts holds the first word of every expression in phraseRewrites.
var rewriteStarts = func() map[string]bool {
	m := map[string]bool{}
	for k := range phraseRewrites {
		m[strings.Fields(k)[0]] = true
	}
	return m
}()

// synonyms map a word to its group's canonical word.
var synonyms = func() map[string]string {
	groups := [][]string{
		{"store", "shop", "shops", "showroom", "showrooms", "outlet", "outlets", "branch", "branches", "stores"},
		{"order", "parcel", "package", "shipment", "consignment", "orders", "parcels", "packages"},
		{"repair", "fix", "fixed", "fixing", "mend", "repaired", "repairs", "repairing"},
		{"warranty", "guarantee", "guaranty", "warrantee"},
		{"offer", "deal", "deals", "promotion", "promotions", "promo", "promos", "offers"},
		{"coupon", "voucher", "promocode", "coupons", "vouchers"},
		{"discount", "rebate", "discounts"},
		{"agent", "human", "person", "representative", "rep", "executive", "operator",
			"advisor", "adviser", "someone", "somebody", "agents", "humans"},
		{"talk", "speak", "chat", "talking", "speaking"},
		{"cost", "price", "charge", "charges", "fee", "fees", "costs", "prices", "charged"},
		{"deliver", "delivery", "shipping", "ship", "shipped", "dispatch", "dispatched", "courier",
			"delivered", "deliveries"},
		{"invoice", "receipt", "invoices", "receipts"},
		{"method", "option", "mode", "methods", "options", "modes"},
		{"broken", "damaged", "faulty", "defective", "cracked", "dead"},
		{"hours", "timings", "timing", "schedule"},
		{"near", "nearest", "nearby", "closest"},
		{"bye", "goodbye", "cya", "ciao", "farewell"},
		{"hello", "hi", "hey", "hiya", "namaste", "greetings", "hallo"},
		{"phone", "mobile", "smartphone", "cellphone", "handset"},
		{"laptop", "notebook", "computer", "pc"},
		{"tv", "television", "telly"},
		{"fridge", "refrigerator"},
		{"item", "product", "goods", "items", "products"},
		{"buy", "purchase", "bought", "purchased", "buying"},
		{"email", "mail", "emails", "mails"},
		{"change", "update", "modify", "edit", "alter", "changed", "updated"},
		{"wrong", "incorrect", "mistaken"},
		{"installment", "instalment", "installments", "instalments"},
		{"password", "passcode", "passwd", "pwd"},
		{"address", "addresses"},
		// A day of the week is one thing to a shop's hours.
		{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
			"weekday", "weekdays", "weekend", "weekends", "holiday", "holidays"},
		// Something reaching the customer: "has not come", "not received".
		{"arrive", "arrived", "arrives", "arriving", "reach", "reached", "reaches",
			"come", "came", "comes", "coming", "receive", "received", "receives"},
		{"creditcard", "debitcard", "upi", "paytm", "netbanking", "gpay", "phonepe", "wallet", "wallets"},
		{"bill", "bills", "dues"},
		{"different", "instead"},
	}
	m := map[string]string{}
	for _, g := range groups {
		for _, w := range g[1:] {
			m[w] = g[0]
		}
	}
	return m
}()

// canonical rewrites multi-word expressions (into one word or several)
// and maps synonyms (the rewrites' words too) to their group's word. It reuses words' backing array.
func canonical(words []string) []string {
	out := words[:0]
	for i := 0; i < len(words); {
		matched := false
		for n := min(maxRewriteWords, len(words)-i); n >= 2 && rewriteStarts[words[i]]; n-- {
			if rep, ok := phraseRewrites[strings.Join(words[i:i+n], " ")]; ok {
				for _, r := range strings.Fields(rep) {
					if s, ok := synonyms[r]; ok {
						r = s
					}
					out = append(out, r)
				}
				i += n
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		w := words[i]
		if s, ok := synonyms[w]; ok {
			w = s
		}
		out = append(out, w)
		i++
	}
	return out
}
