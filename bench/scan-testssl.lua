-- testssl.sh 3.0.8 (Debian), one full run per target of bench/scan.lua, seconds
-- (TLSHARDEN_BENCH_TESTSSL=1 lua5.4 bench/scan.lua rewrites this file)
return {
  ["c2s STARTTLS"] = { seconds = 65.8, date = "2026-12-01" },
  ["c2s direct TLS"] = { seconds = 67.0, date = "2026-12-01" },
}
