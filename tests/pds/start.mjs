// Starts the reference Bluesky services on loopback for tests/test_bluesky.py: a PLC directory
// (in memory), the PDS (@atproto/pds) and the AppView (@atproto/bsky, on PostgreSQL), through
// @atproto/dev-env's TestNetwork, which wires them together the way the real network is wired.
//
// Prints one JSON line {"pds": ..., "plc": ..., "appview": ..., "jwt_secret": ..., ...} when ready.
// Then reads commands from stdin, one a line:
//   sync          wait until the AppView has indexed everything the PDS has sequenced, answer "synced"
//   forget <text> the PDS's rate limits forget every count whose key contains <text> (a DID), as
//                 when their windows end; answers "forgotten <n>". Lets a test wait out a limit
//                 of an hour without waiting.
// and stops everything when stdin closes (the test process ended) or on SIGTERM.
//
// Environment: DB_POSTGRES_URL (required), REDIS_HOST (required by TestNetwork), and
// BLUESKY_TEST_SCHEMA (a PostgreSQL schema name of its own, letters and _ only, so two runs never share tables).
import { createRequire } from 'node:module'
import readline from 'node:readline'
import { TestNetwork } from '@atproto/dev-env'

// Every rate limiter the PDS makes counts through RateLimiter.consume: each is noted on first
// use, so `forget` can reach its counts (kept in memory, see rateLimitsEnabled below).
const limiters = new Set()
const { RateLimiter } = createRequire(import.meta.url)('@atproto/xrpc-server/dist/rate-limiter.js')
const consume = RateLimiter.prototype.consume
RateLimiter.prototype.consume = function (...args) {
  limiters.add(this)
  return consume.apply(this, args)
}

function forget(text) {
  let count = 0
  for (const limiter of limiters) {
    const storage = limiter.limiter?._memoryStorage
    for (const key of Object.keys(storage?._storage ?? {})) {
      if (key.includes(text)) {
        clearTimeout(storage._storage[key].timeoutId)
        delete storage._storage[key]
        count += 1
      }
    }
  }
  return count
}

// The AppView accepts only [A-Za-z_] in a schema name: the pid is spelled in letters.
const schema =
  process.env.BLUESKY_TEST_SCHEMA ||
  `bsky_test_${String(process.pid).replace(/[0-9]/g, (d) => 'abcdefghij'[Number(d)])}`
const started = Date.now()
const network = await TestNetwork.create({
  dbPostgresUrl: process.env.DB_POSTGRES_URL,
  dbPostgresSchema: schema,
  // The PDS's own rate limits (as on a real PDS, in memory), so a test can meet a real 429.
  pds: { rateLimitsEnabled: true },
})
process.stdout.write(
  JSON.stringify({
    pds: network.pds.url,
    plc: network.plc.url,
    appview: network.bsky.url,
    // dev-env's fixed secrets (its const.ts): a test signs an expired access token with it
    admin_password: 'admin-pass',
    jwt_secret: 'jwt-secret',
    started_ms: Date.now() - started,
  }) + '\n',
)

let closing = false
async function shutdown(code) {
  if (closing) return
  closing = true
  try {
    await network.close()
  } finally {
    process.exit(code)
  }
}
process.on('SIGTERM', () => shutdown(0))
process.on('SIGINT', () => shutdown(0))

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  const command = line.trim()
  if (command === 'sync') {
    try {
      await network.processAll(20000)
      process.stdout.write('synced\n')
    } catch (err) {
      process.stdout.write(`error ${String(err && err.message)}\n`)
    }
  } else if (command.startsWith('forget ')) {
    process.stdout.write(`forgotten ${forget(command.slice('forget '.length).trim())}\n`)
  }
})
lines.on('close', () => shutdown(0))
