// Package faq is koel's FAQ bot: it answers a user's message with the bot-says
// of the FAQ node whose user-says are closest to it, or with the business's
// fallback message when no node is close enough.
//
// # Importing
//
// [ParseCSV] reads the seed's FAQ CSV format (node_name; user-says separated
// by "|"; bot-says separated by "<m>") all or nothing, and [Import] stores it
// through an [Importer] (the store's ReplaceFAQ) with the seed's upsert
// semantics, so a failed import leaves the previous FAQ intact.
//
// # Matching
//
// [Matcher] scores text against every node with TF-IDF cosine similarity over
// normalised, stemmed and synonym-mapped words; its doc comment gives the
// design and the measured accuracy.
//
// # Answering
//
// [Bot] implements [github.com/koelvoice/koel/ivr/bot.Bot] and
// [github.com/koelvoice/koel/ivr/bot.Vocabulary], caching one matcher per
// business keyed by the business's FAQVersion.
package faq
