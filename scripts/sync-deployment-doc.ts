// Rewrites the generated blocks of docs/deployment.md from the config writers; the test
// test/unit/deployment-doc.test.ts fails when they differ. Run: node scripts/sync-deployment-doc.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { deploymentDoc } from '../test/fixtures/deployment-doc.ts';

const file = new URL('../docs/deployment.md', import.meta.url);
writeFileSync(file, deploymentDoc(readFileSync(file, 'utf8')));
