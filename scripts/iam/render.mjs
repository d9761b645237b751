// Renders the IAM policies of a CloudFormation/SAM template for one set of parameter
// values: the short-form intrinsic functions (!Sub, !Ref, !GetAtt, !If, ...) are
// resolved with fixed values for the stack's account, region and name, so the
// documents can be handed to a policy evaluator as IAM would see them after a deploy.

import { readFileSync } from 'node:fs'
import yaml from 'js-yaml'

const tags = [
  ['Ref', 'Ref'], ['Sub', 'Fn::Sub'], ['GetAtt', 'Fn::GetAtt'], ['If', 'Fn::If'], ['Not', 'Fn::Not'],
  ['Equals', 'Fn::Equals'], ['And', 'Fn::And'], ['Or', 'Fn::Or'], ['Join', 'Fn::Join'], ['Select', 'Fn::Select'],
  ['Split', 'Fn::Split'], ['FindInMap', 'Fn::FindInMap'], ['ImportValue', 'Fn::ImportValue'], ['Base64', 'Fn::Base64'],
  ['GetAZs', 'Fn::GetAZs'], ['Condition', 'Condition'], ['Cidr', 'Fn::Cidr'], ['ToJsonString', 'Fn::ToJsonString'],
]

// The CloudFormation tags, each in the three YAML node kinds it may take.
const schema = yaml.DEFAULT_SCHEMA.extend(tags.flatMap(([tag, fn]) => ['scalar', 'sequence', 'mapping'].map(kind =>
  new yaml.Type('!' + tag, {
    kind,
    construct: data => ({ [fn]: fn === 'Fn::GetAtt' && typeof data === 'string' ? data.split('.') : data }),
  }))))

/** Parses a template file with CloudFormation's short-form tags. */
export function loadTemplate(file) {
  return yaml.load(readFileSync(file, 'utf8'), { schema })
}

const NoValue = Symbol('AWS::NoValue')

/**
 * Resolves the template for the given stack and parameter overrides and returns it
 * with every intrinsic function replaced by its value; conditions are evaluated,
 * AWS::NoValue entries dropped.
 */
export function render(template, { account, region, partition = 'aws', stackName, parameters = {} }) {
  const params = {}
  for (const [name, p] of Object.entries(template.Parameters ?? {})) {
    params[name] = name in parameters ? parameters[name] : p.Default
    if (params[name] === undefined) throw new Error(`parameter ${name} has no default: give it a value`)
    // A list parameter is a list once resolved, as CloudFormation gives it ("" is [""]).
    if ((p.Type === 'CommaDelimitedList' || p.Type?.startsWith('List<')) && !Array.isArray(params[name])) {
      params[name] = String(params[name]).split(',').map(x => x.trim())
    }
  }
  const pseudo = {
    'AWS::AccountId': account, 'AWS::Region': region, 'AWS::Partition': partition, 'AWS::StackName': stackName,
    'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackId': `arn:${partition}:cloudformation:${region}:${account}:stack/${stackName}/0`,
  }
  const resources = template.Resources ?? {}
  const conditions = {}
  const condition = name => {
    if (!(name in conditions)) {
      if (!template.Conditions || !(name in template.Conditions)) throw new Error(`unknown condition ${name}`)
      conditions[name] = value(template.Conditions[name])
    }
    return conditions[name]
  }
  const ref = name => {
    if (name === 'AWS::NoValue') return NoValue
    if (name in pseudo) return pseudo[name]
    if (name in params) return params[name]
    if (name in resources) return physicalId(name)
    throw new Error(`!Ref ${name}: no such parameter or resource`)
  }
  // A resource's physical ID: its own name property when it sets one, else a name as
  // CloudFormation makes it.
  const physicalId = logical => {
    const r = resources[logical]
    const props = r.Properties ?? {}
    for (const key of ['QueueName', 'LogGroupName', 'FunctionName', 'RoleName', 'ManagedPolicyName', 'TopicName', 'Name']) {
      if (props[key] !== undefined) return value(props[key])
    }
    if (r.Type === 'AWS::IAM::ManagedPolicy') return `arn:${partition}:iam::${account}:policy/${stackName}-${logical}-TEST`
    return `${stackName}-${logical}-TEST`
  }
  const getAtt = (logical, attr) => {
    const r = resources[logical]
    if (!r) throw new Error(`!GetAtt ${logical}.${attr}: no such resource`)
    const id = physicalId(logical)
    const arns = {
      'AWS::Logs::LogGroup': `arn:${partition}:logs:${region}:${account}:log-group:${id}:*`,
      'AWS::SQS::Queue': `arn:${partition}:sqs:${region}:${account}:${id}`,
      'AWS::IAM::Role': `arn:${partition}:iam::${account}:role/${id}`,
      'AWS::Serverless::Function': `arn:${partition}:lambda:${region}:${account}:function:${id}`,
      'AWS::Lambda::Function': `arn:${partition}:lambda:${region}:${account}:function:${id}`,
      'AWS::SNS::Topic': `arn:${partition}:sns:${region}:${account}:${id}`,
      'AWS::S3::Bucket': `arn:${partition}:s3:::${id}`,
    }
    if (attr === 'Arn' && arns[r.Type]) return arns[r.Type]
    if (attr === 'QueueName') return id
    if (attr === 'QueueUrl') return `https://sqs.${region}.amazonaws.com/${account}/${id}`
    return `${logical}.${attr}`
  }
  const sub = (text, vars = {}) => text.replace(/\$\{(!?)([^}]+)\}/g, (_, bang, name) => {
    if (bang) return '${' + name + '}'
    if (name in vars) return String(value(vars[name]))
    if (name.includes('.') && !name.startsWith('AWS::')) {
      const [logical, ...attr] = name.split('.')
      return getAtt(logical, attr.join('.'))
    }
    return String(ref(name))
  })
  const value = node => {
    if (Array.isArray(node)) return node.map(value).filter(v => v !== NoValue)
    if (node === null || typeof node !== 'object') return node
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const [k] = keys
      const a = node[k]
      switch (k) {
        case 'Ref': return ref(a)
        case 'Fn::Sub': return typeof a === 'string' ? sub(a) : sub(a[0], a[1])
        case 'Fn::GetAtt': return getAtt(...(typeof a === 'string' ? a.split('.') : a))
        case 'Fn::If': return value(condition(a[0]) ? a[1] : a[2])
        case 'Fn::Not': return !value(a[0])
        case 'Fn::Equals': return String(value(a[0])) === String(value(a[1]))
        case 'Fn::And': return a.every(value)
        case 'Fn::Or': return a.some(value)
        case 'Condition': return condition(a)
        case 'Fn::Join': return value(a[1]).join(a[0])
        case 'Fn::Select': return value(a[1])[Number(value(a[0]))]
        case 'Fn::Split': return String(value(a[1])).split(a[0])
        case 'Fn::ImportValue': return `imported:${value(a)}`
        case 'Fn::ToJsonString': return JSON.stringify(value(a))
      }
    }
    const out = {}
    for (const [k, v] of Object.entries(node)) {
      const r = value(v)
      if (r !== NoValue) out[k] = r
    }
    return out
  }
  const rendered = {}
  for (const [logical, r] of Object.entries(resources)) {
    if (r.Condition && !condition(r.Condition)) continue
    rendered[logical] = { Type: r.Type, Properties: value(r.Properties ?? {}) }
  }
  return { resources: rendered, parameters: params }
}
