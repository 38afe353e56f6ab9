/** containerd.services.images.v1.Images */
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  applyFieldMask,
  encodedMessage,
  fieldsAdaptor,
  goQuote,
  images,
  parseFilters,
  type FieldMaskSpec,
  type ServiceImplementation,
} from '@boxd/api';
import { scanPrefix } from '../store/db.js';
import { checkLabels, copyLabels, digestError, timestamp, toBigInt, toLong } from '../convert.js';
import type { Metadata } from '../metadata.js';
import type { DescriptorRecord, ImageRecord } from '../store/records.js';
import { requireNamespace } from '../context.js';
import { checkKey } from './keys.js';

type ImageFields = Pick<ImageRecord, 'labels' | 'target'>;

const IMAGE_MASK: FieldMaskSpec<ImageFields> = {
  fields: {
    labels: 'map',
    target: 'value',
    // `annotations` are the target's annotations.
    annotations: (target, update, key) => {
      const annotations = { ...target.target.annotations };
      if (key === undefined) {
        target.target = { ...target.target, annotations: { ...update.target.annotations } };
        return;
      }
      const value = update.target.annotations[key];
      if (value) annotations[key] = value;
      else delete annotations[key];
      target.target = { ...target.target, annotations };
    },
  },
  whenEmpty: ['labels', 'target'],
};

/** Field 1 (`images`) of ListImagesResponse holding one encoded Image. */
function listEntry(bytes: Buffer): Buffer[] {
  const head = [0x0a];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      head.push(n);
      break;
    }
    head.push((n & 0x7f) | 0x80);
  }
  return [Buffer.from(head), bytes];
}

export function imagesService(meta: Metadata): ServiceImplementation<typeof images.ImagesService> {
  const { stores } = meta;

  const put = (ns: string, name: string, record: ImageRecord) => {
    stores.images.putSync([ns, name], record);
    stores.imageMessages.putSync([ns, name], Buffer.from(images.Image.encode(imageMessage(name, record))));
  };

  // Stores written before the encoded copies existed get them once.
  if (stores.imageMessages.getKeysCount() !== stores.images.getKeysCount()) {
    meta.write(() => {
      stores.imageMessages.clearSync();
      for (const { key, value } of stores.images.getRange()) put((key as string[])[0]!, (key as string[])[1]!, value);
    });
  }

  const load = (ns: string, name: string): ImageRecord => {
    const record = stores.images.get([ns, name]);
    if (!record) throw new NotFoundError(`image ${goQuote(name)}`);
    return record;
  };

  return {
    async Get(req, ctx) {
      const ns = requireNamespace(ctx);
      return { image: imageMessage(req.name, load(ns, req.name)) };
    },

    async List(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      if (filter.always) {
        const parts: Buffer[] = [];
        for (const { value } of scanPrefix(stores.imageMessages, [ns])) parts.push(...listEntry(value));
        return encodedMessage(Buffer.concat(parts));
      }
      const out = [];
      for (const { key, value } of scanPrefix(stores.images, [ns])) {
        if (filter.match(imageAdaptor(key[1]!, value))) out.push(imageMessage(key[1]!, value));
      }
      return { images: out };
    },

    async Create(req, ctx) {
      const ns = requireNamespace(ctx);
      const name = req.image?.name ?? '';
      if (!name) throw new InvalidArgumentError('Image.Name required');
      const fields = validateImage(name, imageFields(req.image));
      const record = meta.write(() => {
        checkKey([ns, name]);
        if (stores.images.get([ns, name])) throw new AlreadyExistsError(`image ${goQuote(name)}`);
        meta.touchNamespace(ns);
        const now = meta.now();
        const created: ImageRecord = { ...fields, createdAt: now, updatedAt: now };
        put(ns, name, created);
        return created;
      });
      return { image: imageMessage(name, record) };
    },

    async Update(req, ctx) {
      const ns = requireNamespace(ctx);
      const name = req.image?.name ?? '';
      if (!name) throw new InvalidArgumentError('Image.Name required');
      const record = meta.write(() => {
        const current = load(ns, name);
        const merged = applyFieldMask<ImageFields>(current, imageFields(req.image), req.updateMask?.paths, IMAGE_MASK, `image ${goQuote(name)}`);
        const fields = validateImage(name, { labels: copyLabels(merged.labels), target: merged.target });
        const updated: ImageRecord = { ...fields, createdAt: current.createdAt, updatedAt: meta.now() };
        put(ns, name, updated);
        return updated;
      });
      return { image: imageMessage(name, record) };
    },

    async Delete(req, ctx) {
      const ns = requireNamespace(ctx);
      meta.write(() => {
        load(ns, req.name);
        stores.images.removeSync([ns, req.name]);
        stores.imageMessages.removeSync([ns, req.name]);
      });
      if (req.sync) await meta.gc.collect();
      else meta.gc.schedule();
      return {};
    },
  };
}

function imageFields(image: images.Image | null | undefined): ImageFields {
  const target = image?.target;
  return {
    labels: copyLabels(image?.labels),
    target: {
      mediaType: target?.mediaType ?? '',
      digest: target?.digest ?? '',
      size: toBigInt(target?.size),
      annotations: copyLabels(target?.annotations),
    },
  };
}

function validateImage(name: string, fields: ImageFields): ImageFields {
  if (!name) throw new InvalidArgumentError('image name must not be empty');
  checkLabels('image.Labels', fields.labels);
  validateTarget(fields.target);
  return fields;
}

function validateTarget(target: DescriptorRecord): void {
  const problem = digestError(target.digest);
  if (problem) throw new InvalidArgumentError(`Target.Digest ${goQuote(target.digest)} invalid: ${problem}`);
  if (target.size <= 0n) throw new InvalidArgumentError('Target.Size must be greater than zero');
  if (!target.mediaType) throw new InvalidArgumentError('Target.MediaType must be set');
}

function imageMessage(name: string, record: ImageRecord) {
  const { target } = record;
  return {
    name,
    labels: record.labels,
    target: { mediaType: target.mediaType, digest: target.digest, size: toLong(toBigInt(target.size)), annotations: target.annotations },
    createdAt: timestamp(record.createdAt),
    updatedAt: timestamp(record.updatedAt),
  };
}

function imageAdaptor(name: string, record: ImageRecord) {
  return fieldsAdaptor(
    { name, 'target.digest': record.target.digest, 'target.mediatype': record.target.mediaType },
    { labels: record.labels, annotations: record.target.annotations },
  );
}
