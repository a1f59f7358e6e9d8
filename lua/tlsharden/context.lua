--- tlsharden.context: the lower-level tools for LuaSec contexts, beside the
-- capabilities of the tlsharden module: the default harden policy, the
-- report of a context's latest hardening, a certificate key's kind, the
-- fast key loader and OpenSSL's option names. See docs/reference/context.md.
--
--   local context = require "tlsharden.context"
--   context.harden_defaults()            --> { min_version = "tlsv1_2", ... }
--   context.key_kind(ctx)                --> "EC", 256
return require("tlsharden.core").context
