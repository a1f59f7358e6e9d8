-- testssl.sh 3.0.8 (Debian), one full run per target of bench/scan.lua, seconds
-- (TLSHARDEN_BENCH_TESTSSL=1 lua5.4 bench/scan.lua rewrites this file)
return {
  ["c2s STARTTLS"] = { seconds = 28.7, u_seconds = 15.2, date = "2026-12-05" },
  ["c2s direct TLS"] = { seconds = 34.4, u_seconds = 13.9, date = "2026-12-05" },
}
