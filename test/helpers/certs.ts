import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { tempDir } from './servers'

/** A certificate and its key, as PEM and as the files a server program reads. */
export interface KeyPair {
  cert: Buffer
  key: Buffer
  certFile: string
  keyFile: string
}

export interface TestCertificates {
  /** The CA certificate (PEM) that signed both certificates below. */
  ca: Buffer
  caFile: string
  /** For 127.0.0.1 and etcd.test; usable by a client too (etcd's own gateway connects with it). */
  server: KeyPair
  /** A client certificate (CN gateway). */
  client: KeyPair
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/**
 * Makes a CA, and a server and a client certificate it signed, with openssl in
 * a temporary directory removed at teardown. EC P-256 keys: quick to make.
 */
export async function makeCertificates (t: Test): Promise<TestCertificates> {
  const dir = await tempDir(t, 'certs')
  const openssl = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }) }
  const write = (name: string, lines: string[]): void => writeFileSync(join(dir, name), lines.join('\n') + '\n')
  write('ca.cnf', [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = v3_ca',
    '[dn]', 'CN = fastify-lb test CA',
    '[v3_ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash'
  ])
  openssl(['req', '-x509', '-config', 'ca.cnf', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1'])
  const leaf = (name: string, cn: string, extensions: string[], serial: number): KeyPair => {
    write(`${name}.ext`, ['basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature', ...extensions])
    openssl(['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial),
      '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`])
    const certFile = join(dir, `${name}.pem`)
    const keyFile = join(dir, `${name}.key`)
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile }
  }
  const server = leaf('server', '127.0.0.1', ['extendedKeyUsage = serverAuth,clientAuth', 'subjectAltName = IP:127.0.0.1,DNS:etcd.test'], 2)
  const client = leaf('client', 'gateway', ['extendedKeyUsage = clientAuth'], 3)
  const caFile = join(dir, 'ca.pem')
  return { ca: readFileSync(caFile), caFile, server, client }
}
