-- An example Prosody 0.12 configuration for `make demo` and
-- `tlsharden audit examples/prosody.cfg.lua`: two virtual hosts, one left
-- with Prosody's defaults, one with a TLS block of the kind copied from old
-- tutorials. Certificates are looked up in the `certificates` folder
-- relative to this file, as Prosody does; `make demo` generates them.

admins = { "admin@chat.example.org" }

modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
}

c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false

-- Direct TLS for clients (RFC 8314) next to STARTTLS.
c2s_direct_tls_ports = { 5223 }

certificates = "certs"

VirtualHost "chat.example.org"
	-- Prosody's defaults: the Mozilla intermediate profile.

VirtualHost "legacy.example.net"
	-- Copied from an old blog post.
	ssl = {
		protocol = "sslv23";
		options = { "no_sslv2" };
		ciphers = "ALL:!aNULL:!eNULL:!EXPORT:!DES:RC4+RSA:+HIGH:+MEDIUM";
		depth = 1;
	}
	allow_unencrypted_plain_auth = true
