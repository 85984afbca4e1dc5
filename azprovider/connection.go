package azprovider

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// devStorage is what UseDevelopmentStorage=true stands for: Azurite's
// well-known account on its default ports. None of the Go SDKs expands it.
const devStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// account is a parsed connection string.
type account struct {
	name                        string
	key                         string // empty with a SAS or a token credential
	sas                         string // without the leading '?'
	blobURL, queueURL, tableURL string
}

// parseConnectionString parses an Azure Storage connection string. Its
// errors never quote the string: it holds the account key.
func parseConnectionString(cs string) (*account, error) {
	fields := map[string]string{}
	for part := range strings.SplitSeq(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w: connection string has a part without '=' (the string is not shown: it holds secrets)", core.ErrInvalidInput)
		}
		fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(fields["usedevelopmentstorage"], "true") {
		return parseConnectionString(devStorage)
	}
	a := &account{name: fields["accountname"], key: fields["accountkey"], sas: strings.TrimPrefix(fields["sharedaccesssignature"], "?")}
	if a.key == "" && a.sas == "" {
		return nil, fmt.Errorf("%w: connection string has neither AccountKey nor SharedAccessSignature", core.ErrInvalidInput)
	}
	if a.key != "" && a.name == "" {
		return nil, fmt.Errorf("%w: connection string has an AccountKey but no AccountName", core.ErrInvalidInput)
	}
	proto := fields["defaultendpointsprotocol"]
	if proto == "" {
		proto = "https"
	}
	suffix := fields["endpointsuffix"]
	if suffix == "" {
		suffix = "core.windows.net"
	}
	endpoint := func(key, service string) (string, error) {
		if v := fields[key]; v != "" {
			if _, err := url.Parse(v); err != nil {
				return "", fmt.Errorf("%w: connection string has an invalid %s", core.ErrInvalidInput, key)
			}
			return strings.TrimSuffix(v, "/"), nil
		}
		if a.name == "" {
			return "", fmt.Errorf("%w: connection string has no AccountName and no %s", core.ErrInvalidInput, key)
		}
		return fmt.Sprintf("%s://%s.%s.%s", proto, a.name, service, suffix), nil
	}
	var err error
	if a.blobURL, err = endpoint("blobendpoint", "blob"); err != nil {
		return nil, err
	}
	if a.queueURL, err = endpoint("queueendpoint", "queue"); err != nil {
		return nil, err
	}
	if a.tableURL, err = endpoint("tableendpoint", "table"); err != nil {
		return nil, err
	}
	return a, nil
}

// withSAS appends the SAS token to a service URL.
func withSAS(u, sas string) string {
	if sas == "" {
		return u
	}
	return u + "/?" + sas
}

// connect creates the three service clients.
func (p *Provider) connect() error {
	o := p.opts
	var a *account
	if o.ConnectionString != "" {
		var err error
		if a, err = parseConnectionString(o.ConnectionString); err != nil {
			return err
		}
	} else {
		a = &account{name: o.AccountName}
		def := func(v, service string) string {
			if v != "" {
				return strings.TrimSuffix(v, "/")
			}
			return fmt.Sprintf("https://%s.%s.core.windows.net", o.AccountName, service)
		}
		a.blobURL, a.queueURL, a.tableURL = def(o.BlobEndpoint, "blob"), def(o.QueueEndpoint, "queue"), def(o.TableEndpoint, "table")
	}
	p.redact = newRedactor(o.ConnectionString, a.key, a.sas)

	topts := &aztables.ClientOptions{ClientOptions: p.clientOptions("table")}
	qopts := &azqueue.ClientOptions{ClientOptions: p.clientOptions("queue")}
	bopts := &azblob.ClientOptions{ClientOptions: p.clientOptions("blob")}
	var err error
	switch {
	case o.Credential != nil:
		if p.tables, err = aztables.NewServiceClient(a.tableURL, o.Credential, topts); err == nil {
			if p.queues, err = azqueue.NewServiceClient(a.queueURL, o.Credential, qopts); err == nil {
				p.blobs, err = azblob.NewClient(a.blobURL, o.Credential, bopts)
			}
		}
	case a.key != "":
		var tk *aztables.SharedKeyCredential
		var qk *azqueue.SharedKeyCredential
		var bk *azblob.SharedKeyCredential
		if tk, err = aztables.NewSharedKeyCredential(a.name, a.key); err != nil {
			break
		}
		if qk, err = azqueue.NewSharedKeyCredential(a.name, a.key); err != nil {
			break
		}
		if bk, err = azblob.NewSharedKeyCredential(a.name, a.key); err != nil {
			break
		}
		if p.tables, err = aztables.NewServiceClientWithSharedKey(a.tableURL, tk, topts); err == nil {
			if p.queues, err = azqueue.NewServiceClientWithSharedKeyCredential(a.queueURL, qk, qopts); err == nil {
				p.blobs, err = azblob.NewClientWithSharedKeyCredential(a.blobURL, bk, bopts)
			}
		}
	default:
		if p.tables, err = aztables.NewServiceClientWithNoCredential(withSAS(a.tableURL, a.sas), topts); err == nil {
			if p.queues, err = azqueue.NewServiceClientWithNoCredential(withSAS(a.queueURL, a.sas), qopts); err == nil {
				p.blobs, err = azblob.NewClientWithNoCredential(withSAS(a.blobURL, a.sas), bopts)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%w: cannot create the storage clients: %s", core.ErrInvalidInput, p.redact.text(err.Error()))
	}
	return nil
}

// redactor removes secrets from error texts: the account key, the SAS token
// and its signature, and the connection string itself.
type redactor struct {
	secrets []string
}

var sigRE = regexp.MustCompile(`(?i)(sig=)[^&\s"']+`)

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		if len(s) >= 8 {
			r.secrets = append(r.secrets, s, url.QueryEscape(s))
		}
	}
	return r
}

func (r *redactor) text(s string) string {
	if r == nil {
		return sigRE.ReplaceAllString(s, "${1}REDACTED")
	}
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "REDACTED")
	}
	return sigRE.ReplaceAllString(s, "${1}REDACTED")
}
