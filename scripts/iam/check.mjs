#!/usr/bin/env node
// Evaluates the stack's IAM policies offline with a real policy evaluator
// (@cloud-copilot/iam-simulate), since LocalStack does not enforce IAM: this is the
// one check that the policies allow what the code does and nothing more.
//
//   node scripts/iam/check.mjs [TEMPLATE]     (default template.yaml; run from the repository root)
//
// The template is rendered for two stack configurations (Mode single with the AWS
// managed SSM key, Mode fanout with a customer managed key); in each, every role and
// managed policy the template defines is evaluated against the requests it must allow
// and those it must refuse. The per-consumer policy comes from `tokenctl policy`
// (TOKENCTL names a built binary; without it, `go run ./cmd/tokenctl`). Exits 1 when
// any decision differs from what is expected, or when the template defines a role or
// policy this check has no expectations for.

import { execFileSync } from 'node:child_process'
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { loadTemplate, render } from './render.mjs'

const templateFile = process.argv[2] ?? 'template.yaml'
const account = '123456789012'
const region = 'us-east-1'
const stackName = 'token-refresher'
const arn = (service, rest) => `arn:aws:${service}:${region}:${account}:${rest}`
const param = name => arn('ssm', `parameter${name}`)
const customerKey = arn('kms', 'key/11111111-2222-3333-4444-555555555555')
const otherKey = arn('kms', 'key/99999999-8888-7777-6666-555555555555')
const ssmKey = arn('kms', 'key/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee') // what alias/aws/ssm names
const secretsKey = arn('kms', 'key/bbbbbbbb-cccc-dddd-eeee-ffffffffffff') // SecretsKmsKeyArn
const queuesKey = arn('kms', 'key/cccccccc-dddd-eeee-ffff-000000000000') // QueuesKmsKeyArn
const signingKeys = [arn('kms', 'key/dddddddd-eeee-ffff-0000-111111111111'), arn('kms', 'key/mrk-0123456789abcdef0123456789abcdef')] // SigningKeyArns
const viaSQS = { 'kms:ViaService': `sqs.${region}.amazonaws.com` }
const viaSSM = { 'kms:ViaService': `ssm.${region}.amazonaws.com` }
const viaSecretsManager = { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` }

// The default key policy, which lets the account's IAM policies decide: KMS requires a
// key policy as well as an identity policy, and this is the one both keys have here.
const keyPolicy = {
  Version: '2012-10-17',
  Statement: [{ Sid: 'EnableIAMUserPermissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
}

const configurations = [
  { name: 'Mode single, AWS managed key', parameters: { Mode: 'single', KmsKeyArn: '' }, key: ssmKey, aliases: ['alias/aws/ssm'] },
  { name: 'Mode fanout, own keys, tracing Active, in a VPC', parameters: {
      Mode: 'fanout', KmsKeyArn: customerKey, SecretsKmsKeyArn: secretsKey, QueuesKmsKeyArn: queuesKey, Tracing: 'Active',
      SigningKeyArns: signingKeys.join(','),
      VpcSubnetIds: 'subnet-0123456789abcdef0,subnet-0fedcba9876543210', VpcSecurityGroupIds: 'sg-0123456789abcdef0',
    }, key: customerKey, aliases: ['alias/tokens'] },
]

let failures = 0
let evaluated = 0

async function decide(policies, [want, action, resource, context = {}], { principal = `arn:aws:iam::${account}:role/under-test`, resourcePolicy } = {}) {
  const request = {
    action, principal,
    resource: { accountId: account, resource }, contextVariables: context,
  }
  const sim = {
    identityPolicies: policies.map((policy, i) => ({ name: `policy${i}`, policy })),
    serviceControlPolicies: [], resourceControlPolicies: [], request,
  }
  if (action.startsWith('kms:')) sim.resourcePolicy = keyPolicy
  if (resourcePolicy) sim.resourcePolicy = resourcePolicy
  const r = await runSimulation(sim, {})
  evaluated++
  if (r.resultType === 'error') {
    failures++
    console.log(`  ERROR ${action} ${resource}: ${JSON.stringify(r.errors)}`)
    return
  }
  const got = r.overallResult === 'Allowed' ? 'allow' : 'deny'
  if (got !== want) {
    failures++
    const allowing = (r.result?.analysis?.identityAnalysis?.allowStatements ?? []).map(s => JSON.parse(JSON.stringify(s.statement)).Sid ?? JSON.stringify(s.statement))
    console.log(`  FAIL ${action} on ${resource}${Object.keys(context).length ? ' ' + JSON.stringify(context) : ''}: got ${r.overallResult}, want ${want}${allowing.length ? ' (allowed by ' + allowing.join(', ') + ')' : ''}`)
  }
}

async function expect(label, policies, cases, options) {
  const before = failures
  for (const c of cases) await decide(policies, c, options)
  console.log(`  ${failures === before ? 'ok  ' : 'FAIL'} ${label}: ${cases.length} requests`)
}

function tokenctlPolicy(args) {
  const [cmd, pre] = process.env.TOKENCTL ? [process.env.TOKENCTL, []] : ['go', ['run', './cmd/tokenctl']]
  const out = execFileSync(cmd, [...pre, 'policy', '-region', region, '-account', account, ...args], { encoding: 'utf8' })
  return JSON.parse(out)
}

// Reads of a token parameter that return its value.
const tokenReads = name => [
  ['ssm:GetParameter', param(name)], ['ssm:GetParameters', param(name)], ['ssm:GetParameterHistory', param(name)],
]

const template = loadTemplate(templateFile)
for (const conf of configurations) {
  console.log(`iam-check: ${templateFile}, ${conf.name}`)
  const { resources, parameters } = render(template, { account, region, stackName, parameters: conf.parameters })
  const tokens = parameters.TokenParameterPrefix.replace(/\/+$/, '')
  const state = parameters.StateParameterPrefix.replace(/\/+$/, '')
  const secret = name => arn('secretsmanager', `secret:${parameters.SecretNamePrefix}${name}-AbCdEf`)
  const kms = (action, key = conf.key, aliases = conf.aliases) => [action, key, { ...viaSSM, 'kms:ResourceAliases': aliases }]
  const directKms = action => [action, conf.key, { 'kms:ResourceAliases': conf.aliases }]
  const fanout = conf.parameters.Mode === 'fanout'
  const ownSecretsKey = Boolean(conf.parameters.SecretsKmsKeyArn)
  // Decrypting a secret under SecretsKmsKeyArn: only through Secrets Manager, only when given.
  const secretsKms = [
    [ownSecretsKey ? 'allow' : 'deny', 'kms:Decrypt', secretsKey, viaSecretsManager],
    ['deny', 'kms:Decrypt', secretsKey],
    ['deny', 'kms:Decrypt', secretsKey, viaSSM],
    ['deny', 'kms:Encrypt', secretsKey, viaSecretsManager],
    ['deny', 'kms:Decrypt', otherKey, viaSecretsManager],
  ]
  // Signing assertions: exactly the SigningKeyArns, digests only, when given.
  const signs = conf.parameters.SigningKeyArns ? 'allow' : 'deny'
  const signing = [
    ...signingKeys.flatMap(k => [[signs, 'kms:Sign', k, { 'kms:MessageType': 'DIGEST' }], [signs, 'kms:GetPublicKey', k]]),
    ['deny', 'kms:Sign', signingKeys[0], { 'kms:MessageType': 'RAW' }],
    ['deny', 'kms:Sign', otherKey, { 'kms:MessageType': 'DIGEST' }],
    ['deny', 'kms:GetPublicKey', otherKey],
    ['deny', 'kms:Decrypt', signingKeys[0]],
    ['deny', 'kms:Verify', signingKeys[0]],
  ]
  const jobs = arn('sqs', `${stackName}-jobs.fifo`)
  const deadJobs = arn('sqs', `${stackName}-jobs-dlq.fifo`)
  const refresherFunction = arn('lambda', `function:${stackName}-refresher`)
  const logGroup = `/aws/lambda/${stackName}-refresher`
  const bucket = `arn:aws:s3:::${stackName}-RegistryBucket-TEST`
  const registry = `${bucket}/providers.yaml`
  const listing = { 's3:prefix': 'providers.yaml' }
  const lease = `${bucket}/leases/ecard`
  const failedQueue = resources.RefresherFunction?.Properties?.EventInvokeConfig?.DestinationConfig?.OnFailure?.Destination
    ?? arn('sqs', `${stackName}-FailedInvocationsQueue-TEST`)

  // Every identity policy the template defines, by the resource that holds it.
  const held = {}
  for (const [logical, r] of Object.entries(resources)) {
    const p = r.Properties
    switch (r.Type) {
      case 'AWS::IAM::Role':
        if (p.ManagedPolicyArns?.length) {
          failures++
          console.log(`  FAIL ${logical}: managed policies ${p.ManagedPolicyArns.join(', ')} cannot be evaluated offline; write the statements in the template`)
        }
        held[logical] = (p.Policies ?? []).map(x => x.PolicyDocument)
        break
      case 'AWS::IAM::ManagedPolicy':
      case 'AWS::IAM::Policy':
        held[logical] = [p.PolicyDocument]
        break
      case 'AWS::Serverless::Function':
        if (!p.Role) {
          failures++
          console.log(`  FAIL ${logical}: SAM would create its role, which this check does not see; give it a Role`)
        }
        break
    }
  }
  const expectations = {
    // The function: each call it makes, and none outside its prefixes.
    RefresherFunctionRole: [
      ['allow', 'logs:CreateLogStream', arn('logs', `log-group:${logGroup}:log-stream:2026/12/02/[$LATEST]0123456789abcdef`)],
      ['allow', 'logs:PutLogEvents', arn('logs', `log-group:${logGroup}:log-stream:2026/12/02/[$LATEST]0123456789abcdef`)],
      ['allow', 'sqs:SendMessage', failedQueue],
      ['allow', 'secretsmanager:GetSecretValue', secret('ecard')],
      ['allow', 'secretsmanager:BatchGetSecretValue', '*'],
      ['allow', 'ssm:DescribeParameters', '*'],
      ['allow', 'ssm:GetParametersByPath', param(tokens)],
      ['allow', 'ssm:GetParameter', param(`${tokens}/ecard`)],
      ['allow', 'ssm:GetParameters', param(`${tokens}/ecard`)],
      ['allow', 'ssm:PutParameter', param(`${tokens}/ecard`)],
      ['allow', 'ssm:GetParameterHistory', param(`${tokens}/ecard`)],
      ['allow', 'ssm:GetParametersByPath', param(state)],
      ['allow', 'ssm:GetParameter', param(`${state}/health/ecard`)],
      ['allow', 'ssm:GetParameters', param(`${state}/health/ecard`)],
      ['allow', 'ssm:PutParameter', param(`${state}/run`)],
      ['allow', 'ssm:GetParameterHistory', param(`${state}/run`)],
      ['allow', ...kms('kms:Encrypt')], ['allow', ...kms('kms:Decrypt')], ['allow', ...kms('kms:GenerateDataKey')],
      ...['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'GetQueueAttributes']
        .map(a => [fanout ? 'allow' : 'deny', `sqs:${a}`, jobs]),
      ['deny', 'logs:CreateLogGroup', arn('logs', `log-group:${logGroup}`)],
      ['deny', 'logs:PutLogEvents', arn('logs', 'log-group:/aws/lambda/other:log-stream:x')],
      ['deny', 'sqs:SendMessage', deadJobs],
      ['deny', 'sqs:SendMessage', arn('sqs', 'other-queue')],
      ['deny', 'secretsmanager:GetSecretValue', secret('').replace(parameters.SecretNamePrefix, 'other-app/db')],
      ['deny', 'secretsmanager:PutSecretValue', secret('ecard')],
      ['deny', 'secretsmanager:DeleteSecret', secret('ecard')],
      ['deny', 'ssm:GetParameter', param('/other-app/config')],
      ['deny', 'ssm:GetParameter', param(`${tokens}-other/ecard`)],
      ['deny', 'ssm:GetParametersByPath', param(tokens.replace(/\/[^/]+$/, ''))],
      ['deny', 'ssm:PutParameter', param('/other-app/config')],
      ['deny', 'ssm:DeleteParameter', param(`${tokens}/ecard`)],
      ['deny', 'ssm:DeleteParameter', param(`${state}/run`)],
      ['deny', ...directKms('kms:Decrypt')],
      ['deny', ...kms('kms:Decrypt', otherKey, ['alias/other'])],
      ['deny', 'kms:CreateGrant', conf.key, viaSSM],
      ['deny', 'cloudwatch:PutMetricData', '*'],
      ['deny', 'lambda:InvokeFunction', arn('lambda', 'function:other')],
      ...secretsKms,
      ...signing,
      // In a VPC: the function's network interfaces, nothing else of EC2.
      ...['CreateNetworkInterface', 'DescribeNetworkInterfaces', 'DeleteNetworkInterface', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses']
        .map(a => [conf.parameters.VpcSubnetIds ? 'allow' : 'deny', `ec2:${a}`, '*']),
      ['deny', 'ec2:RunInstances', '*'],
      ['deny', 'ec2:AuthorizeSecurityGroupEgress', '*'],
      // Queues under QueuesKmsKeyArn: through SQS only.
      [conf.parameters.QueuesKmsKeyArn ? 'allow' : 'deny', 'kms:GenerateDataKey', queuesKey, viaSQS],
      [conf.parameters.QueuesKmsKeyArn ? 'allow' : 'deny', 'kms:Decrypt', queuesKey, viaSQS],
      ['deny', 'kms:Decrypt', queuesKey],
      ['deny', 'kms:Decrypt', queuesKey, viaSSM],
      // Tracing Active: send segments; never read traces.
      [conf.parameters.Tracing === 'Active' ? 'allow' : 'deny', 'xray:PutTraceSegments', '*'],
      [conf.parameters.Tracing === 'Active' ? 'allow' : 'deny', 'xray:PutTelemetryRecords', '*'],
      ['deny', 'xray:GetTraceSummaries', '*'],
      ['deny', 'xray:BatchGetTraces', '*'],
    ],
    // The function's registry read: providers.yaml, and telling a missing one from no access.
    RefresherRegistryReadPolicy: [
      ['allow', 's3:GetObject', registry],
      ['allow', 's3:ListBucket', bucket, listing],
      ['deny', 's3:ListBucket', bucket],
      ['deny', 's3:ListBucket', bucket, { 's3:prefix': 'other' }],
      ['deny', 's3:GetObject', `${bucket}/other.yaml`],
      ['deny', 's3:GetObjectVersion', registry],
      ['deny', 's3:PutObject', registry],
      ['deny', 's3:DeleteObject', registry],
    ],
    // The function's rotation leases: read and write leases/*, nothing else of the bucket.
    RefresherLeasesPolicy: [
      ['allow', 's3:GetObject', lease],
      ['allow', 's3:PutObject', lease],
      ['allow', 's3:ListBucket', bucket, { 's3:prefix': 'leases/ecard' }],
      ['deny', 's3:ListBucket', bucket],
      ['deny', 's3:ListBucket', bucket, { 's3:prefix': 'providers.yaml' }],
      ['deny', 's3:DeleteObject', lease],
      ['deny', 's3:PutObject', registry],
      ['deny', 's3:PutObject', `${bucket}/other.yaml`],
      ['deny', 's3:PutObject', `${bucket}/leasesx/ecard`],
      ['deny', 's3:GetObject', `${bucket}/other.yaml`],
    ],
    // The people who manage providers: the registry and its history; no secret, no token.
    ProviderManagersPolicy: [
      ['allow', 's3:GetObject', registry],
      ['allow', 's3:PutObject', registry],
      ['allow', 's3:GetObjectVersion', registry],
      ['allow', 's3:ListBucket', bucket, listing],
      ['allow', 's3:ListBucketVersions', bucket, listing],
      ['deny', 's3:PutObject', `${bucket}/other.yaml`],
      ['deny', 's3:DeleteObject', registry],
      ['deny', 's3:DeleteObjectVersion', registry],
      ['deny', 's3:PutBucketPolicy', bucket],
      ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
      ...tokenReads(`${tokens}/ecard`).map(c => ['deny', ...c]),
    ],
    // tokenctl check -probe: the providers' secrets, nothing else.
    ProviderProbePolicy: [
      ['allow', 'secretsmanager:GetSecretValue', secret('ecard')],
      ['allow', 'secretsmanager:BatchGetSecretValue', '*'],
      ...secretsKms,
      ...signing,
      ['deny', 'secretsmanager:GetSecretValue', secret('').replace(parameters.SecretNamePrefix, 'other-app/db')],
      ['deny', 'secretsmanager:PutSecretValue', secret('ecard')],
      ['deny', 'secretsmanager:ListSecrets', '*'],
      ...tokenReads(`${tokens}/ecard`).map(c => ['deny', ...c]),
      ['deny', 'ssm:PutParameter', param(`${tokens}/ecard`)],
      ['deny', 'ssm:GetParameter', param(`${state}/health/ecard`)],
      ['deny', ...kms('kms:Decrypt')],
    ],
    // Consumers: every token, decrypted only through SSM; no state record, no secret.
    TokenReadersPolicy: [
      ['allow', 'ssm:GetParameter', param(`${tokens}/ecard`)],
      ['allow', 'ssm:GetParameters', param(`${tokens}/ecard`)],
      ['allow', 'ssm:GetParametersByPath', param(tokens)],
      ['allow', ...kms('kms:Decrypt')],
      ['deny', 'ssm:GetParameter', param(`${state}/health/ecard`)],
      ['deny', 'ssm:GetParametersByPath', param(state)],
      ['deny', 'ssm:PutParameter', param(`${tokens}/ecard`)],
      ['deny', 'ssm:DeleteParameter', param(`${tokens}/ecard`)],
      ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
      ['deny', 'secretsmanager:BatchGetSecretValue', '*'],
      ['deny', ...directKms('kms:Decrypt')],
      ['deny', ...kms('kms:Encrypt')],
      ['deny', ...kms('kms:Decrypt', otherKey, ['alias/other'])],
    ],
    // Consumers that send conditional rotations: invoke the refresher function,
    // unqualified, and nothing else: no other function, no change to it, no token.
    TokenRotationRequestersPolicy: [
      ['allow', 'lambda:InvokeFunction', refresherFunction],
      ['deny', 'lambda:InvokeFunction', `${refresherFunction}:$LATEST`],
      ['deny', 'lambda:InvokeFunction', `${refresherFunction}:1`],
      ['deny', 'lambda:InvokeFunction', arn('lambda', 'function:other')],
      ['deny', 'lambda:InvokeFunction', `${refresherFunction}-other`],
      ['deny', 'lambda:InvokeAsync', refresherFunction],
      ['deny', 'lambda:InvokeFunctionUrl', refresherFunction],
      ['deny', 'lambda:UpdateFunctionCode', refresherFunction],
      ['deny', 'lambda:UpdateFunctionConfiguration', refresherFunction],
      ['deny', 'lambda:GetFunction', refresherFunction],
      ['deny', 'lambda:AddPermission', refresherFunction],
      ...tokenReads(`${tokens}/ecard`).map(c => ['deny', ...c]),
      ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
      ['deny', 'ssm:PutParameter', param(`${tokens}/ecard`)],
    ],
    // Operators: token metadata and the refresher's records; never a token's value.
    OperatorsPolicy: [
      ['allow', 'ssm:DescribeParameters', '*'],
      ['allow', 'ssm:GetParameter', param(`${state}/health/ecard`)],
      ['allow', 'ssm:GetParametersByPath', param(state)],
      ...tokenReads(`${tokens}/ecard`).map(c => ['deny', ...c]),
      ['deny', 'ssm:GetParametersByPath', param(tokens)],
      ['deny', 'ssm:GetParametersByPath', param(tokens.replace(/\/[^/]+$/, ''))],
      ['deny', 'ssm:PutParameter', param(`${state}/run`)],
      ['deny', ...kms('kms:Decrypt')],
      ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
      ['deny', 'secretsmanager:BatchGetSecretValue', '*'],
      ['deny', 'kms:Decrypt', secretsKey, viaSecretsManager],
      // status lists the stack's providers: the registry read, never a change.
      ['allow', 's3:GetObject', registry],
      ['allow', 's3:ListBucket', bucket, listing],
      ['deny', 's3:GetObject', `${bucket}/other.yaml`],
      ['deny', 's3:PutObject', registry],
      ['deny', 's3:DeleteObject', registry],
    ],
  }
  for (const [logical, policies] of Object.entries(held)) {
    if (!expectations[logical]) {
      failures++
      console.log(`  FAIL ${logical}: a role or policy with no expectations here; add what it must allow and refuse`)
      continue
    }
    await expect(logical, policies, expectations[logical])
  }
  for (const logical of Object.keys(expectations)) {
    if (!held[logical]) {
      failures++
      console.log(`  FAIL ${logical}: expected in the template, not found`)
    }
  }

  // The registry bucket's policy over the function's own identity policies: the
  // function writes leases/* and nothing else there, deletes nothing; nobody else
  // writes a lease, whatever their identity policy allows.
  const bucketPolicy = resources.RegistryBucketPolicy.Properties.PolicyDocument
  const functionRole = `arn:aws:iam::${account}:role/${stackName}-RefresherFunctionRole-TEST`
  const functionPolicies = [...held.RefresherFunctionRole, ...held.RefresherRegistryReadPolicy, ...held.RefresherLeasesPolicy]
  // aws:PrincipalArn of a role's session is the role's ARN.
  const tls = { 'aws:SecureTransport': 'true', 'aws:PrincipalArn': functionRole }
  await expect('the function in the registry bucket', functionPolicies, [
    ['allow', 's3:GetObject', registry, tls],
    ['allow', 's3:GetObject', lease, tls],
    ['allow', 's3:PutObject', lease, tls],
    ['deny', 's3:PutObject', lease, { ...tls, 'aws:SecureTransport': 'false' }],
    ['deny', 's3:PutObject', registry, tls],
    ['deny', 's3:PutObject', `${bucket}/other.yaml`, tls],
    ['deny', 's3:DeleteObject', lease, tls],
    ['deny', 's3:DeleteObject', registry, tls],
    ['deny', 's3:PutObjectAcl', lease, tls],
  ], { principal: functionRole, resourcePolicy: bucketPolicy })
  const admin = [{ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }]
  const asAdmin = { 'aws:SecureTransport': 'true', 'aws:PrincipalArn': `arn:aws:iam::${account}:role/admin` }
  await expect('an administrator in the registry bucket', admin, [
    ['allow', 's3:PutObject', registry, asAdmin],
    ['allow', 's3:GetObject', lease, asAdmin],
    ['deny', 's3:PutObject', lease, asAdmin],
    ['deny', 's3:DeleteObject', lease, asAdmin],
  ], { principal: `arn:aws:iam::${account}:role/admin`, resourcePolicy: bucketPolicy })

  // One consumer's own policy (tokenctl policy ecard): ecard's token and nothing else.
  const keyArgs = conf.parameters.KmsKeyArn ? ['-kms-key', conf.parameters.KmsKeyArn] : []
  const one = tokenctlPolicy(['-token-prefix', tokens, ...keyArgs, 'ecard'])
  await expect('tokenctl policy ecard', [one], [
    ['allow', 'ssm:GetParameter', param(`${tokens}/ecard`)],
    ['allow', ...kms('kms:Decrypt')],
    ...tokenReads(`${tokens}/billing`).map(c => ['deny', ...c]),
    ['deny', 'ssm:GetParameter', param(`${tokens}/ecard2`)],
    ['deny', 'ssm:GetParameter', param(`${tokens}/ecard/old`)],
    ['deny', 'ssm:GetParameterHistory', param(`${tokens}/ecard`)],
    ['deny', 'ssm:GetParametersByPath', param(tokens)],
    ['deny', 'ssm:GetParameter', param(`${state}/health/ecard`)],
    ['deny', 'ssm:PutParameter', param(`${tokens}/ecard`)],
    ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
    ['deny', 'secretsmanager:BatchGetSecretValue', '*'],
    ['deny', ...directKms('kms:Decrypt')],
    ['deny', ...kms('kms:Decrypt', otherKey, ['alias/other'])],
  ])
  // tokenctl policy -rotate ecard: the same reads, and the invoke of the refresher.
  const rotating = tokenctlPolicy(['-token-prefix', tokens, ...keyArgs, '-rotate', `${stackName}-refresher`, 'ecard'])
  await expect('tokenctl policy -rotate ecard', [rotating], [
    ['allow', 'ssm:GetParameter', param(`${tokens}/ecard`)],
    ['allow', ...kms('kms:Decrypt')],
    ['allow', 'lambda:InvokeFunction', refresherFunction],
    ['deny', 'ssm:GetParameter', param(`${tokens}/billing`)],
    ['deny', 'lambda:InvokeFunction', `${refresherFunction}:$LATEST`],
    ['deny', 'lambda:InvokeFunction', arn('lambda', 'function:other')],
    ['deny', 'lambda:UpdateFunctionCode', refresherFunction],
    ['deny', 'secretsmanager:GetSecretValue', secret('ecard')],
  ])
  // Without -rotate, no invoke at all.
  await expect('tokenctl policy ecard (no -rotate)', [one], [
    ['deny', 'lambda:InvokeFunction', refresherFunction],
  ])
  const two = tokenctlPolicy(['-token-prefix', tokens, ...keyArgs, 'ecard', 'billing'])
  await expect('tokenctl policy ecard billing', [two], [
    ['allow', 'ssm:GetParameter', param(`${tokens}/ecard`)],
    ['allow', 'ssm:GetParameter', param(`${tokens}/billing`)],
    ['deny', 'ssm:GetParameter', param(`${tokens}/other`)],
    ['deny', 'ssm:GetParameter', param(`${state}/health/billing`)],
  ])
}

if (failures > 0) {
  console.error(`iam-check: ${failures} of ${evaluated} decisions differ from what the policies must do`)
  process.exit(1)
}
console.log(`iam-check: ${evaluated} requests evaluated, every decision as expected`)
