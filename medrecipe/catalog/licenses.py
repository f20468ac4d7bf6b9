"""The license ids the Hub knows. A card's `license` is one of them, or `other` with the license's name in
`license_name` (and its text at `license_link`): "In case of `license: other` please add the license's text to a
`LICENSE` file inside your repo (or contact us to add the license you use to this list), and set a name for it in
`license_name`" (huggingface/hub-docs, docs/hub/repositories-licenses.md at 008d54d, whose table between the
"region licenses" comments is the list below but for the ids added since: llama3 to llama4, grok2-community,
apple-amlr, apple-ascl, openmdw-1.0 and -1.1, intel-research, h-research, eupl-1.2, fair-noncommercial-research-license,
taken from the Hub's own license filter at https://huggingface.co/models, read 2026-12-01).
"""

HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear",
    "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl",
    "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0",
    "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0",
    "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3",
    "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "grok2-community", "apple-amlr", "apple-ascl", "openmdw-1.0",
    "openmdw-1.1", "intel-research", "h-research", "fair-noncommercial-research-license", "unknown", "other",
})
